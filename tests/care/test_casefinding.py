"""Case finding: the ranked list for a practice, locality or the whole area, within capacity."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .conftest import TODAY, call, care, case_manager, ok, parameters, patient_id, search

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


@pytest.fixture(scope="module")
def app(sample_app: Flask) -> Flask:
    care(sample_app).runs.run(TODAY)
    return sample_app


def listed(app: Flask, **params: Any) -> tuple[list[str], dict[str, Any]]:
    found = ok(call(app, "GET", "$case-finding", **params))
    assert found["resourceType"] == "List" and found["mode"] == "snapshot"
    names = [e["item"]["display"].split(" (")[0] for e in found.get("entry", [])]
    return names, found


def test_practice_list_ranks_jean_first_and_stops_at_the_capacity(app: Flask) -> None:
    names, found = listed(app, practice="Y90001", capacity="3")
    assert names == ["Jean Hardy", "Edith Clarke", "Harold Price"]
    assert found["entry"][0]["item"]["display"] == "Jean Hardy (NHS 9991000003)"
    assert found["entry"][0]["flag"]["coding"][0]["code"] == "very-high"
    assert "5 eligible, 3 listed" in found["note"][0]["text"]
    one, _ = listed(app, practice="Y90001", capacity="1")
    assert one == ["Jean Hardy"]


def test_the_whole_ranking_follows_the_essex_priority_order(app: Flask) -> None:
    names, found = listed(app, capacity="10")
    # frail-elderly admissions first (Jean, Edith by HFRS, Harold), then care home (Arthur), then prescriptions
    assert names == ["Jean Hardy", "Edith Clarke", "Harold Price", "Arthur Bell", "Margaret Okafor"]
    assert found["orderedBy"]["coding"][0]["code"] == "priority"


def test_another_rule_set_gives_its_own_list(app: Flask) -> None:
    names, _ = listed(app, ruleSet="rutland-integrated-care", practice="Y90001", capacity="10")
    assert names == ["Jean Hardy", "Margaret Okafor"]
    unknown = call(app, "GET", "$case-finding", ruleSet="nowhere")
    assert unknown.status == 400


def test_without_case_managers_there_is_no_capacity(app: Flask) -> None:
    names, found = listed(app, practice="Y90001")
    assert names == [] and found["emptyReason"]["text"] == "no capacity"


def test_a_locality_holds_the_practices_that_are_part_of_it(app: Flask) -> None:
    locality = ok(call(app, "POST", "Organization", {"resourceType": "Organization", "name": "Upton locality",
                                                     "identifier": [{"system": ODS, "value": "L0001"}]}), 201)
    practice = search(app, "Organization", identifier=f"{ODS}|Y90001")[0]
    ok(call(app, "PUT", f"Organization/{practice['id']}",
            {**practice, "partOf": {"reference": f"Organization/{locality['id']}"}}))
    names, found = listed(app, locality=f"Organization/{locality['id']}", capacity="2")
    assert names == ["Jean Hardy", "Edith Clarke"] and "locality Upton locality" in found["title"]
    by_code, _ = listed(app, locality=f"{ODS}|L0001", capacity="2")
    assert by_code == names
    empty = ok(call(app, "POST", "Organization", {"resourceType": "Organization", "name": "Elsewhere"}), 201)
    nobody, _ = listed(app, locality=f"Organization/{empty['id']}", capacity="5")
    assert nobody == []


def test_capacity_comes_from_the_caseloads_keeping_room_for_newly_eligible_patients(app: Flask) -> None:
    manager = case_manager(app, "Ben Lewis", "case-manager", "01632 960200")
    _names, found = listed(app, practice="Y90001")
    # one case manager: min(50 free places, 20 new a month) = 20 places, 2 (10 %) kept for incidence
    assert "capacity 18: 20 places free on 1 case managers' caseloads" in found["note"][0]["text"]
    assert "2 kept for newly eligible patients" in found["note"][0]["text"]
    assert len(found["entry"]) == 5
    services = care(app)
    from dataclasses import replace

    settings = services.book.settings
    services.book.settings = replace(settings, new_per_month=3)
    try:
        names, _ = listed(app, practice="Y90001")
        assert names == ["Jean Hardy", "Edith Clarke"]  # 3 places, 1 kept
    finally:
        services.book.settings = settings
    assert manager.startswith("PractitionerRole/")


def test_case_managed_declined_and_deceased_people_are_left_out(app: Flask) -> None:
    manager = case_manager(app, "Cara Shaw", "care-coordinator", "01632 960300")
    jean, harold, arthur = (patient_id(app, who) for who in ("jean", "harold", "arthur"))
    ok(call(app, "POST", f"Patient/{jean}/$enrol", parameters(
        ("template", "Code", "rutland"), ("careManager", "Reference", {"reference": manager}))), 201)
    ok(call(app, "POST", f"Patient/{harold}/$screen", parameters(
        ("decision", "Code", "declined"), ("screener", "Reference", {"reference": manager}),
        ("reason", "String", "Does not want more visits"))))
    record = ok(call(app, "GET", f"Patient/{arthur}"))
    ok(call(app, "PUT", f"Patient/{arthur}", {**record, "deceasedDateTime": "2026-10-30"}))
    names, found = listed(app, capacity="10")
    assert names == ["Edith Clarke", "Margaret Okafor"]
    note = found["note"][0]["text"]
    assert "1 already case-managed, 1 declined in the last 6 months, 1 deceased" in note
