"""Each kind of client x each path x an allowed and a forbidden person: allowed data comes back, forbidden data
is absent exactly as if it did not exist, and every request leaves exactly one audit record."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.security.world import LOCAL, NHS, NHS_NUMBERS

PATIENT_KINDS = ["gp", "hospital", "council", "case-management", "voluntary-sector"]
ALL_KINDS = [*PATIENT_KINDS, "integration"]
RUNS_EVERYTHING = {"gp", "case-management", "integration"}
READS_OBSERVATIONS = {"gp", "hospital", "case-management", "integration"}
WRITES_OBSERVATIONS = {"gp", "hospital", "case-management", "integration"}


def allowed(kind: str, person: str) -> bool:
    return person == "a" or kind == "integration"


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["resourceType"] == "Bundle", body
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body.get("entry", [])
            if "resource" in e and e["resource"]["resourceType"] != "OperationOutcome"}


def same_as_absent(hidden: Any, absent: Any, hidden_id: str, absent_id: str) -> None:
    """A hidden resource's answer equals an absent one's, but for the id asked about."""
    assert hidden.status_code == absent.status_code, (hidden.text, absent.text)
    assert re.sub(re.escape(hidden_id), "X", hidden.text) == re.sub(re.escape(absent_id), "X", absent.text)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("person", ["a", "b"])
def test_read_and_search(audited, kind: str, person: str) -> None:
    ok = allowed(kind, person)
    patient, plan = f"Patient/p{person}", f"CarePlan/plan-{person}"
    read = audited(kind, "GET", patient)
    if ok:
        assert read.status_code == 200 and read.json()["id"] == f"p{person}"
    else:
        same_as_absent(read, audited(kind, "GET", "Patient/pz"), f"p{person}", "pz")
        same_as_absent(audited(kind, "GET", plan), audited(kind, "GET", "CarePlan/plan-z"), f"plan-{person}",
                       "plan-z")
    expected = {patient} if ok else set()
    assert ids(audited(kind, "GET", "Patient", params={"_id": f"p{person}"})) == expected
    assert ids(audited(kind, "GET", "CarePlan", params={"subject": patient})) == ({plan} if ok else set())
    # includes, reverse includes, chains and _has see no more than the caller reaches
    assert ids(audited(kind, "GET", "CarePlan", params={"_id": f"plan-{person}", "_include": "CarePlan:subject"})
               ) == ({plan, patient} if ok else set())
    assert ids(audited(kind, "GET", "Patient", params={"_id": f"p{person}", "_revinclude": "CarePlan:subject"})
               ) == ({plan, patient} if ok else set())
    everything_included = {plan, patient, f"CareTeam/team-{person}"}
    assert ids(audited(kind, "GET", "CarePlan", params={"_include": "CarePlan:*", "_id": f"plan-{person}"})) == (
        everything_included if ok else set())
    chained = audited(kind, "GET", "CarePlan", params={"subject:Patient.identifier": f"{NHS}|{NHS_NUMBERS[person]}"})
    assert ids(chained) == ({plan} if ok else set())
    untyped = audited(kind, "GET", "CarePlan", params={"subject.identifier": f"{NHS}|{NHS_NUMBERS[person]}"})
    assert ids(untyped) == ({plan} if ok else set())  # a chain to several types: those it cannot read left out
    has = audited(kind, "GET", "Patient", params={"_has:CarePlan:subject:identifier": f"{LOCAL}|plan-{person}"})
    assert ids(has) == expected
    # counts
    counted = audited(kind, "GET", "CarePlan", params={"subject": patient, "_summary": "count"}).json()
    assert counted["total"] == (1 if ok else 0)
    total = audited(kind, "GET", "CarePlan", params={"subject": patient, "_total": "accurate"}).json()
    assert total["total"] == (1 if ok else 0)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("person", ["a", "b"])
def test_history_everything_and_case_status(audited, kind: str, person: str) -> None:
    ok = allowed(kind, person)
    patient = f"Patient/p{person}"
    history = audited(kind, "GET", f"{patient}/_history")
    if ok:
        assert ids(history) == {patient}
    else:
        same_as_absent(history, audited(kind, "GET", "Patient/pz/_history"), f"p{person}", "pz")
    type_history = ids(audited(kind, "GET", "CarePlan/_history"))
    assert (f"CarePlan/plan-{person}" in type_history) is ok
    everything = audited(kind, "GET", f"{patient}/$everything")
    if kind not in RUNS_EVERYTHING:
        assert everything.status_code == 403
    elif ok:
        assert {patient, f"CarePlan/plan-{person}"} <= ids(everything)
    else:
        same_as_absent(everything, audited(kind, "GET", "Patient/pz/$everything"), f"p{person}", "pz")
    status = audited(kind, "GET", "Patient/$case-status", params={"identifier": f"{NHS}|{NHS_NUMBERS[person]}"})
    if kind == "voluntary-sector":
        assert status.status_code == 403
    elif ok or kind == "hospital":  # the admission question is direct care: any NHS number
        assert status.status_code == 200, status.text
        assert f'"Patient/p{person}"' in status.text
    else:
        absent = audited(kind, "GET", "Patient/$case-status", params={"identifier": f"{NHS}|9999999999"})
        same_as_absent(status, absent, NHS_NUMBERS[person], "9999999999")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_paging_links_replayed_by_another_client(server, audited, kind: str) -> None:
    first = server.call("integration", "GET", "CarePlan", params={"_count": "1"}).json()
    seen: set[str] = set()
    link = next((x["url"] for x in first["link"] if x["relation"] == "self"), None)
    while link:
        page = audited(kind, "GET", link)
        seen |= ids(page)
        link = next((x["url"] for x in page.json()["link"] if x["relation"] == "next"), None)
    assert seen == ({"CarePlan/plan-a", "CarePlan/plan-b"} if kind == "integration" else {"CarePlan/plan-a"})


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("person", ["a", "b"])
def test_batch_and_transaction(server, audited, kind: str, person: str) -> None:
    ok = allowed(kind, person)
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/p{person}"}},
        {"request": {"method": "GET", "url": f"CarePlan?subject=Patient/p{person}"}}]}
    answer = audited(kind, "POST", "", json=batch).json()
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses[0].startswith("200" if ok else "404")
    searched = answer["entry"][1].get("resource", {}).get("entry", [])
    assert len([e for e in searched if e.get("search", {}).get("mode") == "match"]) == (1 if ok else 0)
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                   "subject": {"reference": f"Patient/p{person}"}, "valueQuantity": {"value": 61, "unit": "kg"}}
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation, "request": {"method": "POST", "url": "Observation"}}]}
    written = audited(kind, "POST", "", json=transaction)
    assert written.status_code == (200 if ok and kind in WRITES_OBSERVATIONS else 403), written.text
    # a conditional reference cannot find a person out of reach: the same answer as an unknown NHS number
    by_number = {**observation, "subject": {"reference": f"Patient?identifier={NHS}|{NHS_NUMBERS[person]}"}}
    unknown = {**observation, "subject": {"reference": f"Patient?identifier={NHS}|9999999999"}}
    conditional = audited(kind, "POST", "", json={**transaction, "entry": [{**transaction["entry"][0],
                                                                          "resource": by_number}]})
    if not ok:
        absent = audited(kind, "POST", "", json={**transaction, "entry": [{**transaction["entry"][0],
                                                                         "resource": unknown}]})
        same_as_absent(conditional, absent, NHS_NUMBERS[person], "9999999999")


@pytest.mark.parametrize("kind", PATIENT_KINDS)
def test_conditional_operations_do_not_reach_hidden_resources(server, audited, kind: str) -> None:
    deleted = audited(kind, "DELETE", "Observation", params={"identifier": f"{LOCAL}|obs-b"})
    assert deleted.status_code in (200, 204, 403)
    assert server.call("integration", "GET", "Observation/obs-b").status_code == 200
    created = audited(kind, "POST", "CarePlan", headers={"If-None-Exist": f"identifier={LOCAL}|plan-b"},
                      json={"resourceType": "CarePlan", "status": "active", "intent": "plan",
                            "subject": {"reference": "Patient/pb"}})
    assert created.status_code == 403  # it does not see plan-b, and may not write for pb
    updated = audited(kind, "PUT", "CarePlan", params={"identifier": f"{LOCAL}|plan-b"},
                      json={"resourceType": "CarePlan", "status": "revoked", "intent": "plan",
                            "subject": {"reference": "Patient/pb"}})
    assert updated.status_code == 403
    assert server.call("integration", "GET", "CarePlan/plan-b").json()["status"] == "active"


@pytest.mark.parametrize("kind", ["gp", "case-management"])
def test_a_write_cannot_move_a_resource_out_of_reach(server, audited, kind: str) -> None:
    before = server.call("integration", "GET", "Observation/obs-a").json()
    moved = {**before, "subject": {"reference": "Patient/pb"}}
    assert audited(kind, "PUT", "Observation/obs-a", json=moved).status_code == 403
    patch = [{"op": "replace", "path": "/subject/reference", "value": "Patient/pb"}]
    assert audited(kind, "PATCH", "Observation/obs-a", data=__import__("json").dumps(patch),
                   headers={"Content-Type": "application/json-patch+json"}).status_code == 403
    assert server.call("integration", "GET", "Observation/obs-a").json()["subject"]["reference"] == "Patient/pa"


def test_observations_are_a_type_the_council_may_not_read(audited) -> None:
    assert audited("council", "GET", "Observation/obs-a").status_code == 403
    assert audited("council", "GET", "Observation").status_code == 403
    everything = ids(audited("integration", "GET", "Patient/pa/$everything"))
    assert "Observation/obs-a" in everything


def test_the_auditor_reads_the_audit_trail_and_nothing_else(server, audited) -> None:
    assert audited("auditor", "GET", "Patient/pa").status_code == 403
    assert audited("auditor", "GET", "Patient").status_code == 403
    read = server.call("gp", "GET", "Patient/pa")
    request_id = read.request.headers["X-Request-ID"]
    found = audited("auditor", "GET", "AuditEvent", params={"patient": "pa", "agent": server.clients["gp"].client_id})
    events = [e["resource"] for e in found.json()["entry"]]
    mine = [e for e in events if any(x.get("what", {}).get("identifier", {}).get("value") == request_id
                                     for x in e["entity"])]
    assert len(mine) == 1
    event = mine[0]
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["meta"]["profile"] == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
                                        "IHE.BasicAudit.PatientRead"]
    assert {"reference": "Patient/pa"} in [x.get("what") for x in event["entity"]]
    assert audited("auditor", "GET", f"AuditEvent/{event['id']}").json()["id"] == event["id"]
    day = event["recorded"][:10]
    on_the_day = audited("auditor", "GET", "AuditEvent", params={"patient": "pa", "date": day, "_count": "1000"})
    assert event["id"] in {e["resource"]["id"] for e in on_the_day.json()["entry"]}
    assert audited("auditor", "GET", "AuditEvent", params={"date": "lt2000-01-01"}).json()["entry"] == []
    assert audited("auditor", "GET", "AuditEvent", params={"patient": "pb", "agent": server.clients["gp"].client_id,
                                                           "outcome": "0"}).json()["entry"] == []
    assert audited("gp", "GET", "AuditEvent").status_code == 403
    assert audited("integration", "GET", "AuditEvent").status_code == 403
    for method in ("POST", "PUT", "DELETE"):
        path = "AuditEvent" if method == "POST" else f"AuditEvent/{event['id']}"
        refused = audited("auditor", method, path, json={"resourceType": "AuditEvent", "id": event["id"]})
        assert refused.status_code in (403, 405)
    assert audited("auditor", "GET", f"AuditEvent/{event['id']}").json() == event


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("person", ["a", "b"])
def test_sorting_and_subsetting_see_only_what_is_reached(audited, kind: str, person: str) -> None:
    ok = allowed(kind, person)
    plan = f"CarePlan/plan-{person}"
    for params in ({"_sort": "-_lastUpdated"}, {"_sort": "status"}, {"_elements": "status"}, {"_summary": "true"},
                   {"_count": "1"}):
        found = ids(audited(kind, "GET", "CarePlan", params={"subject": f"Patient/p{person}", **params}))
        assert found == ({plan} if ok else set()), params


@pytest.mark.parametrize("kind", ["gp", "case-management", "integration"])
@pytest.mark.parametrize("person", ["a", "b"])
def test_instance_operations_on_a_person_out_of_reach_find_nobody(audited, kind: str, person: str) -> None:
    ok = allowed(kind, person)
    for method, operation in (("GET", "$validate"), ("POST", "$stratify"), ("POST", "$screen")):
        if operation != "$validate" and kind == "gp":
            assert audited(kind, method, f"Patient/p{person}/{operation}").status_code == 403  # not a GP's job
            continue
        params = {"decision": "declined", "reason": "test"} if operation == "$screen" else {}
        answer = audited(kind, method, f"Patient/p{person}/{operation}", params=params)
        if ok:
            assert answer.status_code < 400 or answer.status_code == 422, answer.text[:300]
        else:
            absent = audited(kind, method, f"Patient/pz/{operation}", params=params)
            same_as_absent(answer, absent, f"p{person}", "pz")


@pytest.mark.parametrize("kind", ["gp", "hospital", "council", "voluntary-sector"])
def test_population_operations_are_for_the_kinds_that_run_them(audited, kind: str) -> None:
    assert audited(kind, "GET", "$outcomes").status_code == 403
    assert audited(kind, "GET", "Patient/$case-finding").status_code == 403
    assert audited(kind, "POST", "$stratify").status_code == 403


def paged_ids(audited, kind: str, resource_type: str, params: dict[str, str]) -> set[str]:
    """Every id a search finds, following its next links page by page."""
    found: set[str] = set()
    response = audited(kind, "GET", resource_type, params=params)
    while True:
        found |= ids(response)
        following = [link["url"] for link in response.json().get("link", []) if link["relation"] == "next"]
        if not following:
            return found
        response = audited(kind, "GET", following[0].split("/fhir/", 1)[1])


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_population_searches_find_only_the_people_in_reach(audited, kind: str) -> None:
    """Searches whose criteria match both people's records (the reach then tested on the criteria's own index
    rows), in key order, sorted and page by page: only the allowed person's come back."""
    plans = {f"CarePlan/plan-{p}" for p in ("a", "b") if allowed(kind, p)}
    for params in ({"status": "active"}, {"status": "active", "_sort": "-_lastUpdated"},
                   {"identifier": f"{LOCAL}|", "_count": "1"}, {"intent": "plan", "_count": "1", "_sort": "_id"}):
        assert paged_ids(audited, kind, "CarePlan", params) & {"CarePlan/plan-a", "CarePlan/plan-b"} == plans
    if kind in READS_OBSERVATIONS:
        observations = {f"Observation/obs-{p}" for p in ("a", "b") if allowed(kind, p)}
        for params in ({"code": "http://loinc.org|29463-7"}, {"code": "http://loinc.org|29463-7", "_count": "1"},
                       {"code": "http://loinc.org|29463-7", "value-quantity": "gt50"}):
            assert paged_ids(audited, kind, "Observation", params) == observations
        encounters = {f"Encounter/enc-{p}" for p in ("a", "b") if allowed(kind, p)}
        for params in ({"date": "ge2000-01-01", "_sort": "-date"},
                       {"date": "ge2000-01-01", "_sort": "date", "_count": "1"},
                       {"date": "ge2000-01-01", "status": "in-progress", "_sort": "-date", "_count": "1"}):
            assert paged_ids(audited, kind, "Encounter", params) == encounters, params
            first_page = ids(audited(kind, "GET", "Encounter", params=params))  # the reach in the query: never short
            assert len(first_page) == min(int(params.get("_count", "100")), len(encounters)), params


@pytest.mark.parametrize(("kind", "query"), [
    ("hospital", "Flag?subject.subject.name=x"), ("gp", "Patient?_has:Observation:subject:subject.name=x"),
    ("council", "CarePlan?subject.organization.name=x"), ("case-management", "Observation?encounter.subject.name=x"),
])
def test_a_chain_of_chains_as_a_restricted_client_is_answered_never_500(server, kind: str, query: str) -> None:
    """Each chained step carries the caller's reach, so two steps nest deep: PostgreSQL answers; SQLite, whose
    parser stops at a fixed depth, refuses with too-costly naming what to do (it answered 500)."""
    response = server.call(kind, "GET", query)
    assert response.status_code in (200, 400), response.text[:300]
    body = response.json()
    if response.status_code == 400:
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "too-costly", body
        assert "chained steps" in body["issue"][0]["diagnostics"]
    else:
        assert body["resourceType"] == "Bundle" and not body.get("entry"), body  # no one is named x
