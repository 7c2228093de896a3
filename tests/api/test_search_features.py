"""Chains, _has, includes, sorting, paging, totals, summaries, compartments and $everything."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from tests.support import FHIR_JSON

RUN = f"feat-{uuid.uuid4().hex[:10]}"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def rid(name: str) -> str:
    return f"{RUN}-{name}"


def put(client, resource: dict) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=orjson.dumps(resource),
                          content_type=FHIR_JSON)
    assert response.status_code in (200, 201), response.get_json()


@pytest.fixture(scope="module")
def world(app):
    """Two patients with GPs, encounters, observations, conditions, care plans and care teams."""
    client = app.test_client()
    put(client, {"resourceType": "Organization", "id": rid("trust"), "name": "Upton Trust"})
    put(client, {"resourceType": "Practitioner", "id": rid("gp"), "name": [{"family": "Khan"}]})
    for name, number, family in (("jean", "9991000003", "Hardy"), ("harold", "9991009590", "Price")):
        put(client, {"resourceType": "Patient", "id": rid(name), "name": [{"family": family}],
                     "identifier": [{"system": NHS, "value": f"{number}-{RUN}"}],
                     "generalPractitioner": [{"reference": f"Practitioner/{rid('gp')}"}]})
    put(client, {"resourceType": "Encounter", "id": rid("enc1"), "status": "finished", "class": {"code": "IMP"},
                 "subject": {"reference": f"Patient/{rid('jean')}"}, "period": {"start": "2026-01-12"},
                 "serviceProvider": {"reference": f"Organization/{rid('trust')}"}})
    put(client, {"resourceType": "Encounter", "id": rid("enc2"), "status": "finished", "class": {"code": "IMP"},
                 "subject": {"reference": f"Patient/{rid('harold')}"}, "period": {"start": "2026-06-06"}})
    put(client, {"resourceType": "Observation", "id": rid("obs1"), "status": "final",
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": RUN}]},
                 "subject": {"reference": f"Patient/{rid('jean')}"},
                 "encounter": {"reference": f"Encounter/{rid('enc1')}"}})
    for name, code in (("c1", "44054006"), ("c2", "84114007")):
        put(client, {"resourceType": "Condition", "id": rid(name), "subject": {"reference": f"Patient/{rid('jean')}"},
                     "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}})
    put(client, {"resourceType": "CareTeam", "id": rid("team"), "subject": {"reference": f"Patient/{rid('jean')}"},
                 "participant": [{"member": {"reference": f"Practitioner/{rid('gp')}"}}]})
    put(client, {"resourceType": "CarePlan", "id": rid("plan"), "status": "active", "intent": "plan",
                 "subject": {"reference": f"Patient/{rid('jean')}"},
                 "careTeam": [{"reference": f"CareTeam/{rid('team')}"}],
                 "addresses": [{"reference": f"Condition/{rid('c1')}"}, {"reference": f"Condition/{rid('c2')}"}]})
    put(client, {"resourceType": "CarePlan", "id": rid("oldplan"), "status": "completed", "intent": "plan",
                 "subject": {"reference": f"Patient/{rid('jean')}"}})
    return client


def bundle(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def entries(body: dict, mode: str = "match") -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body.get("entry", [])
            if e.get("search", {}).get("mode") == mode]


def test_chain_one_and_two_levels(world):
    jean = bundle(world, f"/fhir/CarePlan?subject:Patient.identifier={NHS}|9991000003-{RUN}&status=active")
    assert entries(jean) == [f"CarePlan/{rid('plan')}"]
    two = bundle(world, f"/fhir/Observation?encounter.subject.identifier={NHS}|9991000003-{RUN}")
    assert entries(two) == [f"Observation/{rid('obs1')}"]
    three = bundle(world, f"/fhir/Observation?subject:Patient.general-practitioner.name=khan&code={RUN}")
    assert entries(three) == [f"Observation/{rid('obs1')}"]
    none = bundle(world, f"/fhir/Observation?encounter.subject.identifier={NHS}|9991009590-{RUN}")
    assert entries(none) == []


def test_reverse_chain_has_and_nested(world):
    has = bundle(world, f"/fhir/Patient?_has:Observation:subject:code={RUN}")
    assert entries(has) == [f"Patient/{rid('jean')}"]
    nested = bundle(world, f"/fhir/Patient?_has:Encounter:subject:_has:Observation:encounter:code={RUN}")
    assert entries(nested) == [f"Patient/{rid('jean')}"]
    by_gp = bundle(world, f"/fhir/Practitioner?_has:Patient:general-practitioner:_id={rid('harold')}")
    assert entries(by_gp) == [f"Practitioner/{rid('gp')}"]


def test_include_revinclude_and_iterate(world):
    plans = bundle(world, f"/fhir/CarePlan?subject={rid('jean')}&status=active"
                          "&_include=CarePlan:care-team&_include=CarePlan:condition")
    assert entries(plans) == [f"CarePlan/{rid('plan')}"]
    assert set(entries(plans, "include")) == {f"CareTeam/{rid('team')}", f"Condition/{rid('c1')}",
                                              f"Condition/{rid('c2')}"}
    star = bundle(world, f"/fhir/CarePlan?_id={rid('plan')}&_include=CarePlan:*")
    assert f"Patient/{rid('jean')}" in entries(star, "include")
    iterate = bundle(world, f"/fhir/Observation?code={RUN}&_include=Observation:encounter"
                            "&_include:iterate=Encounter:service-provider")
    assert set(entries(iterate, "include")) == {f"Encounter/{rid('enc1')}", f"Organization/{rid('trust')}"}
    no_iterate = bundle(world, f"/fhir/Observation?code={RUN}&_include=Observation:encounter"
                               "&_include=Encounter:service-provider")
    assert set(entries(no_iterate, "include")) == {f"Encounter/{rid('enc1')}"}
    rev = bundle(world, f"/fhir/Patient?_id={rid('jean')}&_revinclude=CarePlan:subject")
    assert set(entries(rev, "include")) == {f"CarePlan/{rid('plan')}", f"CarePlan/{rid('oldplan')}"}


def test_sort_on_several_keys(world):
    for index, (family, birth) in enumerate([("Able", "1950-01-01"), ("Able", "1960-01-01"), ("Baker", "1940-01-01"),
                                             ("Able", "1955-01-01")]):
        put(world, {"resourceType": "Patient", "id": rid(f"sort{index}"), "name": [{"family": family}],
                    "birthDate": birth, "meta": {"tag": [{"system": "urn:test", "code": f"{RUN}-sort"}]}})
    ordered = bundle(world, f"/fhir/Patient?_tag=urn:test|{RUN}-sort&_sort=family,-birthdate")
    assert entries(ordered) == [f"Patient/{rid(n)}" for n in ("sort1", "sort3", "sort0", "sort2")]
    reverse = bundle(world, f"/fhir/Patient?_tag=urn:test|{RUN}-sort&_sort=-family,birthdate")
    assert entries(reverse) == [f"Patient/{rid(n)}" for n in ("sort2", "sort0", "sort3", "sort1")]
    by_id = bundle(world, f"/fhir/Patient?_tag=urn:test|{RUN}-sort&_sort=-_id")
    assert entries(by_id) == [f"Patient/{rid(n)}" for n in ("sort3", "sort2", "sort1", "sort0")]


@pytest.mark.parametrize("sort", ["", "&_sort=-_lastUpdated", "&_sort=family"])
def test_paging_to_the_end_without_duplicates_or_gaps(world, sort):
    tag = f"{RUN}-page"
    if not bundle(world, f"/fhir/Patient?_tag=urn:test|{tag}&_count=1").get("entry"):
        for index in range(53):
            put(world, {"resourceType": "Patient", "id": rid(f"page{index}"), "name": [{"family": f"F{index % 7}"}],
                        "meta": {"tag": [{"system": "urn:test", "code": tag}]}})
    url = f"/fhir/Patient?_tag=urn:test|{tag}&_count=10{sort}"
    seen: list[str] = []
    pages = 0
    while url:
        page = bundle(world, url)
        pages += 1
        seen += entries(page)
        links = {link["relation"]: link["url"] for link in page["link"]}
        assert "self" in links and "first" in links
        if pages > 1:
            assert "previous" in links
        url = links.get("next", "").replace("http://localhost", "")
    assert pages == 6
    assert len(seen) == 53 and len(set(seen)) == 53


def test_totals_and_summary_and_elements(world):
    query = f"/fhir/Condition?subject={rid('jean')}"
    assert bundle(world, f"{query}&_total=accurate&_count=1")["total"] == 2
    assert bundle(world, f"{query}&_total=estimate&_count=1")["total"] >= 1
    assert "total" not in bundle(world, f"{query}&_total=none")
    counted = bundle(world, f"{query}&_summary=count")
    assert counted["total"] == 2 and "entry" not in counted
    elements = bundle(world, f"{query}&_elements=code")
    for entry in elements["entry"]:
        assert set(entry["resource"]) == {"resourceType", "id", "meta", "code", "subject"}
    summary = bundle(world, f"/fhir/Patient?_id={rid('jean')}&_summary=true")
    assert "name" in summary["entry"][0]["resource"]
    assert "generalPractitioner" not in summary["entry"][0]["resource"]


def test_post_search_and_system_search(world):
    posted = world.post("/fhir/Condition/_search", data=f"subject={rid('jean')}&code=44054006",
                        content_type="application/x-www-form-urlencoded")
    assert entries(posted.get_json()) == [f"Condition/{rid('c1')}"]
    system = bundle(world, f"/fhir?_type=Patient,Practitioner&_id={rid('jean')},{rid('gp')}")
    assert set(entries(system)) == {f"Patient/{rid('jean')}", f"Practitioner/{rid('gp')}"}


def test_compartment_search(world):
    conditions = bundle(world, f"/fhir/Patient/{rid('jean')}/Condition")
    assert set(entries(conditions)) == {f"Condition/{rid('c1')}", f"Condition/{rid('c2')}"}
    filtered = bundle(world, f"/fhir/Patient/{rid('jean')}/Condition?code=84114007")
    assert entries(filtered) == [f"Condition/{rid('c2')}"]
    assert entries(bundle(world, f"/fhir/Patient/{rid('harold')}/Condition")) == []


def test_everything(world):
    everything = bundle(world, f"/fhir/Patient/{rid('jean')}/$everything?_count=100")
    matched = set(entries(everything))
    assert {f"Patient/{rid('jean')}", f"CarePlan/{rid('plan')}", f"Condition/{rid('c1')}",
            f"Encounter/{rid('enc1')}", f"Observation/{rid('obs1')}", f"CareTeam/{rid('team')}"} <= matched
    assert f"Patient/{rid('harold')}" not in matched
    assert {f"Practitioner/{rid('gp')}", f"Organization/{rid('trust')}"} <= set(entries(everything, "include"))
    typed = bundle(world, f"/fhir/Patient/{rid('jean')}/$everything?_type=Condition")
    assert set(entries(typed)) == {f"Condition/{rid('c1')}", f"Condition/{rid('c2')}"}
    paged = bundle(world, f"/fhir/Patient/{rid('jean')}/$everything?_count=3")
    assert len(entries(paged)) == 3 and any(link["relation"] == "next" for link in paged["link"])
    later = bundle(world, f"/fhir/Patient/{rid('jean')}/$everything?_since=2100-01-01")
    assert entries(later) == []
    assert world.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_self_link_has_only_applied_parameters_and_strict_handling(world):
    lenient = bundle(world, f"/fhir/Condition?subject={rid('jean')}&unknown-thing=1&_count=5")
    self_link = next(link["url"] for link in lenient["link"] if link["relation"] == "self")
    params = dict(parse_qsl(urlsplit(self_link).query))
    assert params == {"subject": rid("jean"), "_count": "5"}
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = world.get(f"/fhir/Condition?subject={rid('jean')}&unknown-thing=1", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert "unknown-thing" in strict.get_json()["issue"][0]["expression"]
    every = bundle(world, f"/fhir/Condition?subject={rid('jean')}")
    assert all(e["fullUrl"].startswith("http://localhost/fhir/Condition/") for e in every["entry"])


@pytest.mark.parametrize("query", [
    "name='; DROP TABLE resources; --", "name=%27%20OR%201%3D1%20--", "_id=' OR '1'='1", "identifier=a|b|c|d",
    "birthdate=2020-13-40", "birthdate=not-a-date", "_lastUpdated=gt", "general-practitioner=" + "x" * 3000,
    "_sort=-", "_count=-1", "_has:Observation:subject:code", "name:exact=" + "\u00e9" * 500,
    "general-practitioner:Practitioner.name.given=x", "organization.partof.partof.partof.partof.partof.partof.name=x",
    "death-date=ap", "_include=Patient:organization:Nope", "_revinclude=Observation", "phone=\\,\\|\\$",
])
def test_hostile_values_give_400_or_empty(world, query):
    response = world.get(f"/fhir/Patient?{query}")
    assert response.status_code in (200, 400), (query, response.data[:300])
    body = response.get_json()
    if response.status_code == 200:
        assert body["resourceType"] == "Bundle"
    else:
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]


def test_deleted_and_other_types_never_match_an_index_criterion(client):
    """Index criteria alone decide type and liveness: a deleted resource and a resource of another type with
    the same identifier are never found, by search or by a transaction's conditional references."""
    system = f"https://example.org/ids/{RUN}"
    for kind, name in (("Patient", "gone"), ("Patient", "kept"), ("Practitioner", "kept")):
        put(client, {"resourceType": kind, "id": rid(f"{name}-{kind}"),
                     "identifier": [{"system": system, "value": name}]})
    assert client.delete(f"/fhir/Patient/{rid('gone-Patient')}").status_code in (200, 204)
    found = entries(bundle(client, f"/fhir/Patient?identifier={system}|gone,{system}|kept"))
    assert [url.rsplit("/", 1)[-1] for url in found] == [rid("kept-Patient")]
    assert entries(bundle(client, f"/fhir/Patient?identifier={system}|")) == found
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": f"Patient?identifier={system}|{value}"},
         "resource": {"resourceType": "Patient", "identifier": [{"system": system, "value": value}],
                      "active": True}} for value in ("gone", "kept")]}
    response = client.post("/fhir/", data=orjson.dumps(transaction), content_type=FHIR_JSON)
    assert response.status_code == 200, response.get_json()
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("200")
    assert response.get_json()["entry"][1]["response"]["location"].startswith(f"Patient/{rid('kept-Patient')}/")


def test_a_chain_follows_only_the_types_its_parameter_indexes(world):
    """`patient` keeps only references resolving to a Patient (`subject.where(resolve() is Patient)`), though R4
    declares Patient and Group: its chains search Patients alone, and asking it for a Group is an error."""
    put(world, {"resourceType": "Group", "id": rid("ward"), "type": "person", "actual": True,
                "identifier": [{"system": NHS, "value": f"9991000003-{RUN}"}]})
    put(world, {"resourceType": "Observation", "id": rid("obs-ward"), "status": "final",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": RUN}]},
                "subject": {"reference": f"Group/{rid('ward')}"}})
    by_patient = bundle(world, f"/fhir/Observation?patient.identifier={NHS}|9991000003-{RUN}")
    assert entries(by_patient) == [f"Observation/{rid('obs1')}"]
    by_subject = bundle(world, f"/fhir/Observation?subject:Group.identifier={NHS}|9991000003-{RUN}")
    assert entries(by_subject) == [f"Observation/{rid('obs-ward')}"]
    refused = world.get(f"/fhir/Observation?patient:Group.identifier={NHS}|9991000003-{RUN}")
    assert refused.status_code == 400, refused.get_json()
    refused = world.get(f"/fhir/Observation?patient:Group={rid('ward')}")
    assert refused.status_code == 400 and "cannot refer to Group" in str(refused.get_json())


def test_an_estimated_total_takes_any_search_value(world):
    """`_total=estimate` asks PostgreSQL's planner with the search written out in full: a value holding `%` or
    ` :name` (what a statement's text gives a meaning) is estimated like any other, never an error."""
    put(world, {"resourceType": "Observation", "id": rid("obs-odd-text"), "status": "final",
                "code": {"text": f"{RUN} 50% :low"}, "subject": {"reference": f"Patient/{rid('jean')}"}})
    query = f"/fhir/Observation?code:text={RUN}%2050%25%20:low&_count=1"
    assert bundle(world, f"{query}&_total=accurate")["total"] == 1
    assert bundle(world, f"{query}&_total=estimate")["total"] >= 0


def test_a_page_read_off_a_code_in_key_order_lists_each_live_match_once(world):
    """A search by one coded value reads its page straight off that code's index rows in key order: a resource
    with two index rows matching (two components of the code, by `component-code-value-quantity`) comes once,
    a deleted one never, and other criteria and paging apply as usual."""
    system, code = "http://example.org/codes", f"{RUN}-twice"
    coding = {"system": system, "code": code}
    part = {"system": system, "code": f"{code}-part"}

    def components(*values: int) -> list[dict]:
        return [{"code": {"coding": [part]}, "valueQuantity": {"value": v, "unit": "mm[Hg]", "system":
                 "http://unitsofmeasure.org", "code": "mm[Hg]"}} for v in values]

    for name, status, codings, parts in (("k1", "final", [coding, {**coding, "display": "again"}], (120, 130)),
                                         ("k2", "final", [coding], (140,)), ("k3", "preliminary", [coding], (90,)),
                                         ("k4", "final", [coding], (150,))):
        put(world, {"resourceType": "Observation", "id": rid(name), "status": status, "code": {"coding": codings},
                    "subject": {"reference": f"Patient/{rid('jean')}"}, "component": components(*parts)})
    assert world.delete(f"/fhir/Observation/{rid('k4')}").status_code in (200, 204)

    def paged(url: str) -> list[str]:
        found: list[str] = []
        while url:
            page = bundle(world, url)
            found += entries(page)
            url = {link["relation"]: link["url"] for link in page["link"]}.get("next", "").replace(
                "http://localhost", "")
        return found

    every = [f"Observation/{rid(n)}" for n in ("k1", "k2", "k3")]
    assert paged(f"/fhir/Observation?code={system}|{code}") == every
    assert paged(f"/fhir/Observation?code={system}|{code}&_count=1") == every
    assert paged(f"/fhir/Observation?code={system}|{code}&status=final&_count=1") == every[:2]
    assert paged(f"/fhir/Observation?code={system}|{code}&status=final&subject={rid('harold')}") == []
    counted = bundle(world, f"/fhir/Observation?code={system}|{code}&_summary=count")
    assert counted["total"] == 3
    by_part = f"/fhir/Observation?component-code-value-quantity={system}|{code}-part$gt100"
    assert paged(by_part) == every[:2]
    assert paged(by_part + "&_count=1") == every[:2]
