"""SMART scopes on every interaction: v2 letters per type, v1 mapped to v2, history and vread under r and s,
search constraints of v2 scopes in every query, each batch entry on its own, a denied transaction entry
failing the whole transaction."""

from __future__ import annotations

import uuid

import pytest

from tests.auth import register_client, session_for
from tests.security.world import NHS

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.fixture(scope="module")
def observations(server):
    """A laboratory and a vital-signs Observation of pa, written by the host."""
    for name, category in (("lab", "laboratory"), ("vitals", "vital-signs")):
        body = {"resourceType": "Observation", "id": f"obs-{name}", "status": "final",
                "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
                "code": {"text": name}, "subject": {"reference": "Patient/pa"},
                "valueQuantity": {"value": 1, "unit": "1"}}
        assert server.call("integration", "PUT", f"Observation/obs-{name}", json=body).status_code in (200, 201)
    return server


def client(server, scope: str, kind: str = "gp"):
    """A session of a gp client of practice A81001 registered with exactly `scope`."""
    registered = register_client(server.app, f"scoped-{uuid.uuid4().hex[:8]}", kind=kind,
                                 organization="https://fhir.nhs.uk/Id/ods-organization-code|A81001", scope=scope)
    return session_for(server.base, registered)


def status(session, method: str, path: str, base: str, **kwargs) -> int:
    return session.request(method, f"{base}/{path}", timeout=60, **kwargs).status_code


def test_v2_letters_each_allow_their_interactions(server) -> None:
    base = server.base
    read_only = client(server, "system/Patient.r")
    assert status(read_only, "GET", "Patient/pa", base) == 200
    assert status(read_only, "GET", "Patient/pa/_history/1", base) == 200
    assert status(read_only, "GET", "Patient/pa/_history", base) == 200  # instance history is a read
    assert status(read_only, "GET", "Patient", base, params={"_id": "pa"}) == 403
    assert status(read_only, "GET", "Patient/_history", base) == 403  # type history is a search
    assert status(read_only, "GET", "CarePlan/plan-a", base) == 403
    search_only = client(server, "system/Patient.s")
    assert status(search_only, "GET", "Patient", base, params={"_id": "pa"}) == 200
    assert status(search_only, "GET", "Patient/_history", base) == 200
    assert status(search_only, "GET", "Patient/pa", base) == 403
    patient = server.call("integration", "GET", "Patient/pa").json()
    assert status(search_only, "PUT", "Patient/pa", base, json=patient) == 403
    # the Patient refers to its practice: what a write refers to must be something the client may read
    updater = client(server, "system/Patient.ru system/Organization.r")
    assert status(updater, "PUT", "Patient/pa", base, json={**patient, "gender": "other"}) == 200
    assert status(updater, "POST", "Patient", base, json={"resourceType": "Patient",
                                                          "generalPractitioner": patient["generalPractitioner"]}) == 403
    assert status(updater, "DELETE", "Patient/pa", base) == 403
    assert server.call("integration", "PUT", "Patient/pa", json=patient).status_code == 200


def test_v1_scopes_map_to_v2(server) -> None:
    base = server.base
    reader = client(server, "system/Patient.read system/CarePlan.read")
    assert status(reader, "GET", "Patient/pa", base) == 200
    assert status(reader, "GET", "CarePlan", base, params={"subject": "Patient/pa"}) == 200
    patient = server.call("integration", "GET", "Patient/pa").json()
    assert status(reader, "PUT", "Patient/pa", base, json=patient) == 403
    writer = client(server, "system/Patient.write")
    assert status(writer, "GET", "Patient/pa", base) == 403
    assert status(writer, "PUT", "Patient/pa", base, json=patient) == 200
    everything = client(server, "system/*.*")
    assert status(everything, "GET", "CarePlan/plan-a", base) == 200


def test_search_constraints_of_a_v2_scope_enter_every_query(observations) -> None:
    server = observations
    base = server.base
    lab = client(server, f"system/Observation.rs?category={CATEGORY}|laboratory system/Patient.rs")
    assert status(lab, "GET", "Observation/obs-lab", base) == 200
    assert status(lab, "GET", "Observation/obs-vitals", base) == 404
    found = lab.get(f"{base}/Observation", params={"subject": "Patient/pa"}, timeout=60).json()
    assert {e["resource"]["id"] for e in found.get("entry", [])} == {"obs-lab"}
    counted = lab.get(f"{base}/Observation", params={"subject": "Patient/pa", "_summary": "count"}, timeout=60)
    assert counted.json()["total"] == 1
    reverse = lab.get(f"{base}/Patient", params={"_id": "pa", "_revinclude": "Observation:subject"}, timeout=60)
    assert {e["resource"]["id"] for e in reverse.json()["entry"]} == {"pa", "obs-lab"}
    has = lab.get(f"{base}/Patient", params={"_has:Observation:subject:code:text": "vitals"}, timeout=60)
    assert has.json().get("entry", []) == []
    everything = lab.get(f"{base}/Patient/pa/$everything", timeout=60)
    assert everything.status_code == 200  # only what the scopes read: no care plan, no vital signs
    assert {e["resource"]["id"] for e in everything.json()["entry"]} == {"pa", "obs-lab"}


def test_batch_entries_are_each_checked_and_a_denied_transaction_entry_fails_the_whole(server) -> None:
    base = server.base
    reader = client(server, "system/Patient.rs system/CarePlan.rs")
    new_plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "subject": {"reference": "Patient/pa"}}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pa"}},
        {"resource": new_plan, "request": {"method": "POST", "url": "CarePlan"}}]}
    answer = reader.post(f"{base}/", json=batch, timeout=60).json()
    assert [e["response"]["status"][:3] for e in answer["entry"]] == ["200", "403"]
    before = server.call("integration", "GET", "CarePlan", params={"subject": "Patient/pa", "_summary": "count"})
    transaction = {**batch, "type": "transaction"}
    refused = reader.post(f"{base}/", json=transaction, timeout=60)
    assert refused.status_code == 403
    after = server.call("integration", "GET", "CarePlan", params={"subject": "Patient/pa", "_summary": "count"})
    assert after.json()["total"] == before.json()["total"]


def test_a_scope_constraint_holding_percent_signs_and_colons_reads_as_written(server) -> None:
    """The reach is written into each statement's SQL text: a value of the caller's own with characters that
    mean something to the driver or the SQL toolkit (`%`, `:name`) still matches exactly itself."""
    codes = {"percent": "a%b :c", "other": "axb :c"}
    for name, code in codes.items():
        body = {"resourceType": "Observation", "id": f"obs-code-{name}", "status": "final",
                "code": {"coding": [{"system": "http://example.org/codes", "code": code}]},
                "subject": {"reference": "Patient/pa"}}
        assert server.call("integration", "PUT", f"Observation/obs-code-{name}", json=body).status_code in (200, 201)
    scoped = client(server, "system/Observation.rs?code=http://example.org/codes|a%25b%20%3Ac system/Patient.rs")
    assert status(scoped, "GET", "Observation/obs-code-percent", server.base) == 200
    assert status(scoped, "GET", "Observation/obs-code-other", server.base) == 404
    found = scoped.get(f"{server.base}/Observation", params={"subject": "Patient/pa"}, timeout=60).json()
    assert {e["resource"]["id"] for e in found.get("entry", [])} == {"obs-code-percent"}


def paged_in_order(session, url: str, params: dict[str, str]) -> list[str]:
    """The ids a search finds, in order, following its next links."""
    found: list[str] = []
    answer = session.get(url, params=params, timeout=60).json()
    while True:
        found += [e["resource"]["id"] for e in answer.get("entry", []) if e.get("search", {}).get("mode") == "match"]
        following = [link["url"] for link in answer.get("link", []) if link["relation"] == "next"]
        if not following:
            return found
        answer = session.get(following[0], timeout=60).json()


def test_a_sorted_search_of_one_person_pages_through_only_what_the_scopes_reach(server) -> None:
    """One person's records sorted (the reach tested on the matches in their order, page by page): what a
    scope's constraint hides leaves no gap in a page and no shift of the next one, in either direction,
    as a type search and as a compartment search."""
    patient = server.call("integration", "GET", "Patient/pa").json()
    person = {key: value for key, value in patient.items() if key not in ("identifier", "meta")}
    person["id"] = "p-sorted"
    assert server.call("integration", "PUT", "Patient/p-sorted", json=person).status_code in (200, 201)
    for day in range(1, 10):
        category = "laboratory" if day % 3 else "vital-signs"
        body = {"resourceType": "Observation", "id": f"obs-sorted-{day}", "status": "final",
                "category": [{"coding": [{"system": CATEGORY, "code": category}]}], "code": {"text": "sorted"},
                "subject": {"reference": "Patient/p-sorted"}, "effectiveDateTime": f"2026-03-0{day}"}
        assert server.call("integration", "PUT", f"Observation/obs-sorted-{day}", json=body).status_code in (200, 201)
    labs = [f"obs-sorted-{day}" for day in range(1, 10) if day % 3]
    lab = client(server, f"system/Observation.rs?category={CATEGORY}|laboratory system/Patient.rs")
    host = server.session("integration")
    base = server.base
    for count in ("1", "2", "4"):
        newest_first = {"subject": "Patient/p-sorted", "_sort": "-date", "_count": count}
        assert paged_in_order(lab, f"{base}/Observation", newest_first) == labs[::-1], count
        assert paged_in_order(lab, f"{base}/Patient/p-sorted/Observation", {"_sort": "date", "_count": count}) == labs
        assert paged_in_order(host, f"{base}/Observation", newest_first) == [
            f"obs-sorted-{day}" for day in range(9, 0, -1)]
    pages, url = [], f"{base}/Patient/p-sorted/$everything?_count=2"
    while url:  # the person's compartment in key order, the reach tested on it page by page: no short page
        answer = lab.get(url, timeout=60).json()
        pages.append([e["resource"]["id"] for e in answer.get("entry", [])
                      if e.get("search", {}).get("mode", "match") == "match"])
        url = next((link["url"] for link in answer.get("link", []) if link["relation"] == "next"), None)
    assert all(len(page) == 2 for page in pages[:-1]) and pages[-1], pages
    assert sorted(found for page in pages for found in page) == sorted(["p-sorted", *labs])
    other = client(server, "system/Observation.rs system/Patient.rs", kind="hospital")  # holds nobody here
    assert paged_in_order(other, f"{base}/Observation", {"patient": "p-sorted", "_sort": "-date"}) == []


@pytest.mark.parametrize("who,path,params", [
    ("lab", "Observation", {"subject": "Patient/p-chain", "encounter:Encounter.status": "in-progress"}),
    ("lab", "Observation", {"subject": "Patient/p-chain", "_has:Observation:has-member:status": "final"}),
    ("lab", "Patient/p-chain/Observation", {"encounter:Encounter.status": "in-progress"}),
    ("gp", "Observation", {"subject": "Patient/p-chain", "performer:Patient.family": "PersonB"}),
    ("gp", "Observation", {"patient": "p-chain", "performer:Patient.identifier": f"{NHS}|9000000017"}),
])
def test_a_sorted_search_of_one_person_keeps_the_reach_on_its_chains_and_has(server, who, path, params) -> None:
    """Sorted, one person's records are tested in order outside the statement that finds them; a chain's
    targets and `_has`'s sources are still tested inside it: nothing out of reach (an Encounter outside the
    scope, an Observation of another category, a person the practice does not hold) answers a criterion."""
    patient = server.call("integration", "GET", "Patient/pa").json()
    person = {key: value for key, value in patient.items() if key not in ("identifier", "meta")}
    lab, vitals = ([{"coding": [{"system": CATEGORY, "code": code}]}] for code in ("laboratory", "vital-signs"))
    subject = {"reference": "Patient/p-chain"}
    for body in (
            {**person, "id": "p-chain"},
            {"resourceType": "Encounter", "id": "enc-chain", "status": "in-progress", "subject": subject,
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}},
            {"resourceType": "Observation", "id": "obs-chain-enc", "status": "final", "category": lab,
             "code": {"text": "chain"}, "subject": subject, "encounter": {"reference": "Encounter/enc-chain"},
             "effectiveDateTime": "2026-04-01"},
            {"resourceType": "Observation", "id": "obs-chain-member", "status": "final", "category": lab,
             "code": {"text": "chain"}, "subject": subject, "effectiveDateTime": "2026-04-02"},
            {"resourceType": "Observation", "id": "obs-chain-panel", "status": "final", "category": vitals,
             "code": {"text": "chain"}, "subject": subject, "effectiveDateTime": "2026-04-03",
             "hasMember": [{"reference": "Observation/obs-chain-member"}]},
            {"resourceType": "Observation", "id": "obs-chain-performer", "status": "final", "category": lab,
             "code": {"text": "chain"}, "subject": subject, "performer": [{"reference": "Patient/pb"}],
             "effectiveDateTime": "2026-04-04"}):
        written = server.call("integration", "PUT", f"{body['resourceType']}/{body['id']}", json=body)
        assert written.status_code in (200, 201), written.text
    session = (client(server, f"system/Observation.rs?category={CATEGORY}|laboratory system/Patient.rs")
               if who == "lab" else server.session("gp"))
    url = f"{server.base}/{path}"
    assert paged_in_order(session, url, params) == []
    for order in ("date", "-date"):
        assert paged_in_order(session, url, {**params, "_sort": order}) == [], order
