"""History at instance, type and system level with _since, _at, _count and paging."""

from __future__ import annotations

import time

import orjson

from tests.support import FHIR_JSON, patient


def create_versions(client, count: int) -> tuple[dict, list[str]]:
    created = client.post("/fhir/Patient", data=orjson.dumps(patient()), content_type=FHIR_JSON).get_json()
    stamps = [created["meta"]["lastUpdated"]]
    for index in range(count - 1):
        time.sleep(0.002)
        body = {**created, "birthDate": f"19{20 + index}-01-01"}
        updated = client.put(f"/fhir/Patient/{created['id']}", data=orjson.dumps(body), content_type=FHIR_JSON)
        stamps.append(updated.get_json()["meta"]["lastUpdated"])
    return created, stamps


def test_instance_history_since_and_at(client):
    created, stamps = create_versions(client, 4)
    url = f"/fhir/Patient/{created['id']}/_history"
    since = client.get(f"{url}?_since={stamps[2]}").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in since["entry"]] == ["4", "3"]
    at = client.get(f"{url}?_at={stamps[1]}").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in at["entry"]] == ["2"]


def test_history_paging_has_no_gaps_or_duplicates(client):
    created, _ = create_versions(client, 7)
    url = f"/fhir/Patient/{created['id']}/_history?_count=3"
    seen: list[str] = []
    while url:
        page = client.get(url.replace("http://localhost", "")).get_json()
        seen += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == ["7", "6", "5", "4", "3", "2", "1"]


def test_type_and_system_history(client):
    created, stamps = create_versions(client, 2)
    type_history = client.get(f"/fhir/Patient/_history?_since={stamps[0]}&_count=500").get_json()
    ids = {e["resource"]["id"] for e in type_history["entry"] if "resource" in e}
    assert created["id"] in ids
    assert all(e["fullUrl"].startswith("http://localhost/fhir/Patient/") for e in type_history["entry"])
    system = client.get(f"/fhir/_history?_since={stamps[0]}&_count=500").get_json()
    assert created["id"] in {e["resource"]["id"] for e in system["entry"] if "resource" in e}
    assert client.get("/fhir/_history?_since=nonsense").status_code == 400


def test_history_carries_its_total_at_instance_and_type_level(client):
    created, _ = create_versions(client, 5)
    page = client.get(f"/fhir/Patient/{created['id']}/_history?_count=2").get_json()
    assert page["total"] == 5 and len(page["entry"]) == 2  # counted, though the page holds two
    whole = client.get(f"/fhir/Patient/{created['id']}/_history").get_json()
    assert whole["total"] == 5 == len(whole["entry"])
    versions = client.get("/fhir/Patient/_history?_count=1").get_json()
    everything = client.get("/fhir/Patient/_history?_count=1000").get_json()
    assert versions["total"] >= 5 and versions["total"] == everything["total"]
    if "next" not in {link["relation"] for link in everything["link"]}:
        assert everything["total"] == len(everything["entry"])
