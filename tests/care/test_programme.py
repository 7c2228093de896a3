"""Enrolment under a programme template, the hospital's case-status lookup, admission alerts, package changes
and capacity, on the sample extracts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from ..auth import session_for
from .conftest import (
    NHS,
    PEOPLE,
    TODAY,
    B,
    call,
    care,
    case_manager,
    ok,
    parameters,
    part,
    parts,
    patient_id,
    search,
)

ADMISSION_METHOD = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
SWIFT_SERVICE = f"{B}/Id/swift-service-id/E0900001"


@pytest.fixture(scope="module")
def app(sample_app: Flask) -> Flask:
    care(sample_app).runs.run(TODAY)
    return sample_app


@pytest.fixture(scope="module")
def base(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fhir"
    server.shutdown()


@pytest.fixture(scope="module")
def http(app: Flask, base: str) -> Iterator[requests.Session]:
    """A session with the app's test client's bearer token."""
    with session_for(base, app.extensions["tests.client"]) as session:
        yield session


@pytest.fixture(scope="module")
def matron(app: Flask) -> str:
    return case_manager(app)


@pytest.fixture(scope="module")
def enrolled(app: Flask, matron: str) -> dict[str, Any]:
    jean = patient_id(app, "jean")
    answer = ok(call(app, "POST", f"Patient/{jean}/$enrol", parameters(
        ("template", "Code", "rutland"), ("careManager", "Reference", {"reference": matron}),
        ("start", "Date", TODAY.isoformat()), ("reason", "String", "Agreed at the practice MDT"))), 201)
    return {p["name"]: p["resource"] for p in answer["parameter"] if "resource" in p}


def case_status(http: requests.Session, base: str, nhs: str) -> dict[str, Any]:
    response = http.get(f"{base}/Patient/$case-status", params={"identifier": f"{NHS}|{nhs}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    return response.json()


def activities(plan: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [a for a in plan["activity"] if a["detail"]["code"]["coding"][0]["code"] == code]


def test_enrolment_under_the_rutland_template_schedules_reviews_at_3_and_6_months_and_discharge_at_12(
        enrolled: dict[str, Any]) -> None:
    plan = enrolled["carePlan"]
    assert plan["status"] == "active" and plan["intent"] == "plan"
    assert plan["period"] == {"start": "2026-11-02", "end": "2027-11-02"}
    reviews = activities(plan, "review")
    due = [r["detail"]["scheduledPeriod"]["start"] for r in reviews]
    assert due == ["2027-02-02", "2027-05-02", "2027-11-02"]
    assert "Discharge" in reviews[-1]["detail"]["description"]
    contact = activities(plan, "contact-telephone")[0]["detail"]["scheduledTiming"]["repeat"]
    assert (contact["frequency"], contact["period"], contact["periodUnit"]) == (1, 1, "mo")
    packages = activities(plan, "social-care-package")
    assert sorted(p["detail"]["description"].split(":")[0] for p in packages) == ["Equipment", "Home Support"]
    assert all(p["outcomeReference"][0]["reference"].startswith("EpisodeOfCare/") for p in packages)
    assert len(plan["addresses"]) == 4  # diabetes, heart failure, COPD, osteoporosis
    assert "Jean Hardy is case-managed (Rutland integrated care scheme) since 2026-11-02" in plan["description"]


def test_enrolment_writes_the_episode_team_alert_screening_and_assessment(enrolled: dict[str, Any],
                                                                           matron: str) -> None:
    episode = enrolled["episode"]
    assert episode["status"] == "active" and episode["careManager"]["reference"] == matron
    assert episode["type"][0]["coding"][0]["code"] == "integrated-care-scheme"
    assert episode["team"][0]["reference"] == f"CareTeam/{enrolled['careTeam']['id']}"
    members = [p["member"]["reference"] for p in enrolled["careTeam"]["participant"]]
    assert members[0] == matron and any(m.startswith("Practitioner/") for m in members[1:])  # the usual GP
    flag = enrolled["flag"]
    assert flag["status"] == "active" and flag["author"]["reference"] == matron
    assert "01632 960100" in flag["code"]["text"]
    screening = enrolled["screening"]
    assert screening["status"] == "completed" and screening["businessStatus"]["coding"][0]["code"] == "accepted"
    assert screening["owner"]["reference"] == matron
    assert screening["statusReason"]["text"] == "Agreed at the practice MDT"
    assessment = enrolled["assessment"]
    assert assessment["owner"]["reference"] == matron and "restriction" not in assessment  # found by case finding


def test_every_resource_written_conforms_to_its_profile(app: Flask, enrolled: dict[str, Any]) -> None:
    for name in ("episode", "careTeam", "carePlan", "flag"):
        resource = enrolled[name]
        assert resource["meta"]["profile"][0].startswith(f"{B}/StructureDefinition/SCR-")
        stored = ok(call(app, "GET", f"{resource['resourceType']}/{resource['id']}"))
        outcome = ok(call(app, "POST", f"{resource['resourceType']}/$validate", stored))
        assert all(i["severity"] in ("information", "warning") for i in outcome["issue"]), outcome


def test_the_hospital_lookup_by_nhs_number_answers_case_manager_plan_risk_and_packages(
        base: str, http: requests.Session, enrolled: dict[str, Any], matron: str) -> None:
    status = case_status(http, base, PEOPLE["jean"])
    assert part(status, "caseManaged") is True
    programme = part(status, "programme")
    assert part(programme, "code")["code"] == "integrated-care-scheme" and part(programme, "since") == "2026-11-02"
    manager = part(status, "caseManager")
    assert part(manager, "name") == "Anne Khan" and part(manager, "role") == "Community matron"
    assert part(manager, "telephone") == "01632 960100" and part(manager, "reference")["reference"] == matron
    assert len(parts(status, "careTeamContact")) >= 2
    plan = part(status, "carePlan")
    assert part(plan, "reference")["reference"] == f"CarePlan/{enrolled['carePlan']['id']}"
    summary = part(plan, "summary")
    assert "Case manager: Anne Khan, Community matron, 01632 960100" in summary
    assert "Home Support: 10.5 hours a week, Upton Home Care Ltd, £241.50 a week" in summary
    assert "Equipment: weekly, " in summary and "£4.20 a week" in summary  # 1 Weeks a week, said plainly
    assert "weeks a week" not in summary
    assert part(plan, "nextReview") == "2027-02-02"
    risk = part(status, "risk")
    assert part(risk, "level") == "case-management"
    methods = {part(a, "method")["code"]: a for a in parts(risk, "assessment")}
    assert part(methods["hfrs"], "score") == 11.5 and part(methods["efi"], "tier")["code"] == "efi-moderate"
    assert [part(p, "status") for p in parts(status, "socialCarePackage")] == ["active", "active"]
    assert any("Case-managed" in part(a, "text") for a in parts(status, "alert"))


def test_the_lookup_by_id_answers_the_same_and_unknown_numbers_get_404(
        base: str, http: requests.Session, app: Flask, enrolled: dict[str, Any]) -> None:
    jean = patient_id(app, "jean")
    by_id = http.get(f"{base}/Patient/{jean}/$case-status", timeout=10).json()
    assert part(by_id, "caseManager") == part(case_status(http, base, PEOPLE["jean"]), "caseManager")
    missing = http.get(f"{base}/Patient/$case-status", params={"identifier": f"{NHS}|9434765919"}, timeout=10)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    david = case_status(http, base, PEOPLE["david"])
    assert part(david, "caseManaged") is False and not parts(david, "caseManager")
    assert part(part(david, "risk"), "level") == "supported-self-care"


def test_an_admission_of_a_case_managed_patient_raises_a_flag_and_a_task(
        base: str, http: requests.Session, app: Flask, matron: str, enrolled: dict[str, Any]) -> None:
    jean = patient_id(app, "jean")
    encounter = {
        "resourceType": "Encounter", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{jean}"}, "period": {"start": "2026-11-02T03:05:00Z"},
        "serviceProvider": {"display": "Upton General Hospital"},
        "hospitalization": {"extension": [{"url": ADMISSION_METHOD, "valueCodeableConcept": {"coding": [
            {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland", "code": "21"}]}}]},
    }
    response = http.post(f"{base}/Encounter", json=encounter, timeout=10,
                         headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 201, response.text
    admitted = response.json()["id"]
    flags = search(app, "Flag", encounter=f"Encounter/{admitted}")
    assert len(flags) == 1
    assert flags[0]["author"]["reference"] == matron and "an emergency admission" in flags[0]["code"]["text"]
    tasks = search(app, "Task", focus=f"Encounter/{admitted}")
    assert len(tasks) == 1 and tasks[0]["owner"]["reference"] == matron and tasks[0]["priority"] == "urgent"
    assert "Upton General Hospital" in tasks[0]["description"]
    alerts = [part(a, "text") for a in parts(case_status(http, base, PEOPLE["jean"]), "alert")]
    assert any("in hospital" in text for text in alerts)
    again = http.put(f"{base}/Encounter/{admitted}", json={**response.json(), "priority": {"text": "urgent"}},
                     timeout=10, headers={"Content-Type": "application/fhir+json"})
    assert again.status_code == 200
    assert len(search(app, "Flag", encounter=f"Encounter/{admitted}")) == 1  # one alert per admission


def test_a_package_change_posted_through_the_api_shows_in_case_status_and_the_plan_history(
        base: str, http: requests.Session, app: Flask, enrolled: dict[str, Any]) -> None:
    query = {"identifier": f"{SWIFT_SERVICE}|SV5001"}
    current = http.get(f"{base}/EpisodeOfCare", params=query, timeout=10).json()["entry"][0]["resource"]
    changed = dict(current)
    changed["extension"] = [dict(e) for e in current["extension"]]
    for extension in changed["extension"]:
        if extension["url"].endswith("Extension-SCR-PlannedUnitsPerWeek"):
            extension["valueQuantity"] = {**extension["valueQuantity"], "value": 14}
        if extension["url"].endswith("Extension-SCR-WeeklyCost"):
            extension["valueMoney"] = {**extension["valueMoney"], "value": 322.0}
    changed.pop("meta", None)
    response = http.put(f"{base}/EpisodeOfCare", params=query, json=changed, timeout=10,
                        headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.text
    status = case_status(http, base, PEOPLE["jean"])
    lines = [part(p, "description") for p in parts(status, "socialCarePackage")]
    assert any(line.startswith("Home Support: 14 hours a week") and "£322.00 a week" in line for line in lines)
    assert "Home Support: 14 hours a week" in part(part(status, "carePlan"), "summary")
    plan_id = enrolled["carePlan"]["id"]
    history = http.get(f"{base}/CarePlan/{plan_id}/_history", timeout=10).json()
    descriptions = [e["resource"]["description"] for e in history["entry"]]
    assert len(descriptions) == 2  # the GP sees the change and what it was before
    assert "14 hours a week" in descriptions[0] and "10.5 hours a week" in descriptions[1]
    package = [a for a in history["entry"][0]["resource"]["activity"]
               if a.get("outcomeReference", [{}])[0].get("reference") == f"EpisodeOfCare/{current['id']}"]
    assert "14 hours a week" in package[0]["detail"]["description"]


def test_enrolling_beyond_capacity_is_refused_unless_overridden(app: Flask, matron: str,
                                                                 enrolled: dict[str, Any]) -> None:
    services = care(app)
    settings = services.book.settings
    services.book.settings = replace(settings, caseload=1)
    try:
        edith = patient_id(app, "edith")
        request = parameters(("template", "Code", "havering"), ("careManager", "Reference", {"reference": matron}))
        refused = call(app, "POST", f"Patient/{edith}/$enrol", request)
        assert refused.status == 422
        issue = refused.body["issue"][0]
        assert issue["code"] == "business-rule"
        assert "Anne Khan already holds 1 active patients (caseload capacity 1)" in issue["diagnostics"]
        assert "override=true" in issue["diagnostics"]
        assert search(app, "EpisodeOfCare", patient=f"Patient/{edith}", type=f"{B}/CodeSystem/care-programme|") == []
        request["parameter"].append({"name": "override", "valueBoolean": True})
        answer = ok(call(app, "POST", f"Patient/{edith}/$enrol", request), 201)
        assert "exceeds capacity" in part(answer, "warning")
    finally:
        services.book.settings = settings
    caseload = ok(call(app, "GET", f"{matron}/$caseload"))
    assert len(caseload["entry"]) == 2 and caseload["note"][0]["text"].startswith("2 active of a caseload of 50")


def test_enrolling_someone_already_case_managed_is_refused(app: Flask, matron: str, enrolled: dict[str, Any]) -> None:
    jean = patient_id(app, "jean")
    again = call(app, "POST", f"Patient/{jean}/$enrol", parameters(
        ("template", "Code", "havering"), ("careManager", "Reference", {"reference": matron})))
    assert again.status == 422 and "already case-managed" in again.body["issue"][0]["diagnostics"]


def test_discharge_ends_the_episode_and_the_alert(base: str, http: requests.Session, app: Flask, matron: str,
                                                  enrolled: dict[str, Any]) -> None:
    margaret = patient_id(app, "margaret")
    ok(call(app, "POST", f"Patient/{margaret}/$enrol", parameters(
        ("template", "Code", "havering"), ("careManager", "Reference", {"reference": matron}),
        ("override", "Boolean", True))), 201)
    assert part(case_status(http, base, PEOPLE["margaret"]), "caseManaged") is True
    episode = ok(call(app, "POST", f"Patient/{margaret}/$discharge", parameters(
        ("date", "Date", "2026-11-20"), ("reason", "String", "Moved out of the area"))))
    assert episode["status"] == "finished" and episode["period"]["end"] == "2026-11-20"
    assert episode["meta"]["versionId"] == "2" and episode == as_stored(app, episode)  # the version written
    status = case_status(http, base, PEOPLE["margaret"])
    assert part(status, "caseManaged") is False and not parts(status, "carePlan")
    assert not any("Case-managed (" in part(a, "text") for a in parts(status, "alert"))


def as_stored(app: Flask, resource: dict[str, Any]) -> dict[str, Any]:
    """The version of the resource its meta names, read back."""
    version = resource["meta"]["versionId"]
    return ok(call(app, "GET", f"{resource['resourceType']}/{resource['id']}/_history/{version}"))


def test_enrol_answers_each_resource_it_wrote_as_stored_with_its_meta(app: Flask, enrolled: dict[str, Any]) -> None:
    assert set(enrolled) == {"episode", "careTeam", "carePlan", "flag", "assessment", "screening"}
    for name, resource in enrolled.items():
        assert resource["meta"]["versionId"] and resource["meta"]["lastUpdated"], name
        assert resource == as_stored(app, resource), name
    assert all(enrolled[name]["meta"]["versionId"] == "1" for name in enrolled if name != "screening")


def test_screen_answers_the_task_as_stored_over_http(app: Flask, base: str, http: requests.Session) -> None:
    ivy = patient_id(app, "ivy")
    response = http.post(f"{base}/Patient/{ivy}/$screen", json=parameters(
        ("decision", "Code", "declined"), ("reason", "String", "Prefers her own arrangements")), timeout=10)
    assert response.status_code == 200, response.text
    task = response.json()
    assert task["resourceType"] == "Task" and task["meta"]["versionId"] and task["meta"]["lastUpdated"]
    assert task == http.get(f"{base}/Task/{task['id']}", timeout=10).json()


def test_an_enrolment_starting_later_is_planned_until_a_run_on_its_start_date(
        base: str, http: requests.Session, app: Flask, matron: str) -> None:
    harold = patient_id(app, "harold")
    answer = ok(call(app, "POST", f"Patient/{harold}/$enrol", parameters(
        ("template", "Code", "havering"), ("careManager", "Reference", {"reference": matron}),
        ("start", "Date", "2026-11-16"), ("override", "Boolean", True))), 201)
    episode = next(p["resource"] for p in answer["parameter"] if p["name"] == "episode")
    assert episode["status"] == "planned" and episode["statusHistory"][0]["status"] == "planned"
    status = case_status(http, base, PEOPLE["harold"])
    assert part(status, "caseManaged") is False and part(part(status, "programme"), "status") == "planned"
    care(app).runs.run(TODAY)
    assert ok(call(app, "GET", f"EpisodeOfCare/{episode['id']}"))["status"] == "planned"
    care(app).runs.run(date(2026, 11, 16))
    active = ok(call(app, "GET", f"EpisodeOfCare/{episode['id']}"))
    assert active["status"] == "active" and [h["status"] for h in active["statusHistory"]] == ["planned", "active"]
    assert part(case_status(http, base, PEOPLE["harold"]), "caseManaged") is True
