"""The three Synthea sets load as transactions, conditional references resolve, reloads add nothing."""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from tests.support import FHIR_JSON

SETS = [
    "synthea-v2.4-smart-generated-sample-data.tar.gz",
    "synthea3-master-10p.tar.gz",
    "synthea-hiv-google-fhir-data-pipes.tar.gz",
]


def bundles(archive: Path) -> list[tuple[str, bytes]]:
    """Bundles of a set, the hospital and practitioner files first."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
        found = [(m.name, tar.extractfile(m).read()) for m in members]  # type: ignore[union-attr]
    return sorted(found, key=lambda item: ("Information" not in item[0], item[0]))


def post(client, data: bytes):
    return client.post("/fhir", data=data, content_type=FHIR_JSON)


def count(client, resource_type: str, query: str = "") -> int:
    return client.get(f"/fhir/{resource_type}?{query}&_total=accurate&_count=0").get_json()["total"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SETS)
def test_synthea_set_loads(fresh_app, shared_dir, name):
    """Each set into its own empty database (the v2.4 patient bundles repeat their organisations)."""
    client = fresh_app.test_client()
    archive = shared_dir / "data" / "synthea" / name
    sent = Counter()
    conditional_checks = []
    for file_name, data in bundles(archive):
        bundle = json.loads(data)
        response = post(client, data)
        assert response.status_code == 200, (file_name, response.data[:500])
        body = response.get_json()
        assert body["type"] == f"{bundle['type']}-response"
        statuses = [entry["response"]["status"] for entry in body["entry"]]
        assert all(status.startswith(("200", "201")) for status in statuses), (file_name, Counter(statuses))
        assert all("location" in e["response"] and "etag" in e["response"] for e in body["entry"])
        for entry in bundle["entry"]:
            sent[entry["resource"]["resourceType"]] += 1
            reference = entry["resource"].get("participant", [{}])[0].get("individual", {}).get("reference", "")
            if reference.startswith("Practitioner?identifier="):
                conditional_checks.append((entry, body["entry"][bundle["entry"].index(entry)]))
    # conditional references point at the practitioner with that NPI
    for sent_entry, answer in conditional_checks[:25]:
        location = answer["response"]["location"].split("/_history")[0]
        stored = client.get(f"/fhir/{location}").get_json()
        npi = sent_entry["resource"]["participant"][0]["individual"]["reference"].split("|", 1)[1]
        target = stored["participant"][0]["individual"]["reference"]
        practitioner = client.get(f"/fhir/{target}").get_json()
        assert any(i["value"] == npi for i in practitioner["identifier"])
    check_searches(client, archive)
    # posting the hospital and practitioner batches again creates no duplicate of anything they create
    # conditionally (ifNoneExist); entries without a condition are new resources, as FHIR requires
    conditional_types = {
        entry["resource"]["resourceType"]
        for file_name, data in bundles(archive) if "Information" in file_name
        for entry in json.loads(data)["entry"] if entry["request"].get("ifNoneExist")
    }
    before = {t: count(client, t) for t in conditional_types}
    for file_name, data in bundles(archive):
        if "Information" in file_name and json.loads(data)["type"] == "batch":
            sent_bundle = json.loads(data)
            again = post(client, data).get_json()
            for entry, answer in zip(sent_bundle["entry"], again["entry"], strict=True):
                expected = "200" if entry["request"].get("ifNoneExist") else "201"
                assert answer["response"]["status"].startswith(expected), (file_name, answer)
    assert {t: count(client, t) for t in conditional_types} == before


def check_searches(client, archive: Path) -> None:
    """Counts from searches equal counts taken from the bundles themselves."""
    heights = 0
    patient_bundles = [json.loads(data) for name, data in bundles(archive) if "Information" not in name]
    for bundle in patient_bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Observation" and any(
                    c.get("code") == "8302-2" for c in resource.get("code", {}).get("coding", [])):
                heights += 1
    assert count(client, "Observation", "code=http://loinc.org|8302-2") == heights
    first = patient_bundles[0]
    patient = next(e["resource"] for e in first["entry"] if e["resource"]["resourceType"] == "Patient")
    identifier = patient["identifier"][0]
    found = client.get(f"/fhir/Patient?identifier={identifier['system']}|{identifier['value']}").get_json()
    patient_id = found["entry"][0]["resource"]["id"]
    encounters = sum(1 for e in first["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert count(client, "Encounter", f"patient={patient_id}") == encounters
    conditions = sum(1 for e in first["entry"] if e["resource"]["resourceType"] == "Condition")
    assert count(client, "Condition", f"subject:Patient.identifier={identifier['system']}|{identifier['value']}") \
        == conditions
