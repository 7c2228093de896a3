"""The 703 HL7 R4 examples: 688 stored and read back unchanged, the other 15 refused with an OperationOutcome.

The examples refer to resources outside the set (Patient/example's Organization/1, Account/example...), so
they round-trip on a server with REFERENTIAL_INTEGRITY=off; a server with the default refuses exactly those
whose references stay unresolved, each refusal naming the missing target."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from flask import Flask

from tests.scr_examples import reference_strings
from tests.support import FHIR_JSON, app_on_own_database

REFUSED_BY_STRUCTURE = {"Evidence-example.json", "Questionnaire-qs1.json"}
QUERY_SUBSCRIPTIONS = {"Subscription-example.json", "Subscription-example-error.json"}
"""R4's query-based Subscriptions: refused (422), this server serves topic-based ones (README "Notifications")."""
REFUSED_BY_INTEGRITY = 260  # of the 679 stored without the check: their targets are not among the examples
SOME_REFUSED_BY_INTEGRITY = {
    "Account-ewg.json": "Coverage/7546D",
    "EpisodeOfCare-example.json": "Account/example",
    "Endpoint-example.json": "Organization/hl7",
}
MISSING_TARGET = re.compile(r"refers to ([A-Za-z]+/[A-Za-z0-9\-.]+), which does not exist on this server")


def example_files(shared_dir: Path) -> list[Path]:
    return sorted((shared_dir / "fhir-r4" / "examples").glob("*.json"))


@pytest.fixture(scope="module")
def unchecked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A server that does not check references: the examples name resources outside their set."""
    yield from app_on_own_database(tmp_path_factory, referential_integrity="off")


@pytest.fixture()
def client(unchecked: Flask):
    return unchecked.test_client()


@pytest.fixture()
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A server with the default REFERENTIAL_INTEGRITY (write,delete)."""
    yield from app_on_own_database(tmp_path_factory)


@pytest.mark.slow
def test_every_example_is_stored_or_refused(client, shared_dir):
    files = example_files(shared_dir)
    assert len(files) == 703
    stored, refused, problems, audit_events = 0, [], [], 0
    supported = client.application.extensions["sharedcare"].services.types.supported
    for path in files:
        resource = json.loads(path.read_text())
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = client.put(url, data=orjson.dumps(resource), content_type=FHIR_JSON)
        assert response.status_code < 500, (path.name, response.data[:300])
        if response.status_code in (200, 201):
            back = client.get(url).get_json()
            back.pop("meta")
            expected = {k: v for k, v in resource.items() if k != "meta"}
            if back != expected:
                problems.append(path.name)
            if "meta" in resource:
                kept = {k: v for k, v in resource["meta"].items() if k not in ("versionId", "lastUpdated")}
                assert {k: v for k, v in client.get(url).get_json()["meta"].items() if k in kept} == kept
            stored += 1
        else:
            body = response.get_json()
            assert body["resourceType"] == "OperationOutcome" and body["issue"], path.name
            if resource["resourceType"] == "AuditEvent":  # the audit trail is written by the server only
                assert response.status_code == 405, path.name
                audit_events += 1
                continue
            if path.name in QUERY_SUBSCRIPTIONS:
                assert response.status_code == 422 and "SubscriptionTopic" in str(body), path.name
                continue
            assert response.status_code in (400, 404), path.name
            refused.append(path.name)
            if resource["resourceType"] not in supported:
                assert "not support" in body["issue"][0]["diagnostics"]
    assert problems == []
    assert stored == 688 - 9 - len(QUERY_SUBSCRIPTIONS)
    assert audit_events == 9
    assert len(refused) == 15
    assert set(refused) >= REFUSED_BY_STRUCTURE


def matches_family(resource: dict, prefix: str) -> bool:
    return any(name.get("family", "").lower().startswith(prefix) for name in resource.get("name", []))


@pytest.mark.slow
def test_searches_over_the_examples(client, shared_dir):
    """Search results over the HL7 examples equal what the example files themselves say."""
    examples = [json.loads(p.read_text()) for p in example_files(shared_dir)]
    supported = client.application.extensions["sharedcare"].services.types.supported
    for resource in examples:
        if resource["resourceType"] in supported:
            client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=orjson.dumps(resource),
                       content_type=FHIR_JSON)
    by_type: dict[str, list[dict]] = {}
    for resource in examples:
        by_type.setdefault(resource["resourceType"], []).append(resource)

    def ids(resource_type: str) -> str:
        return ",".join(r["id"] for r in by_type[resource_type])

    def search(resource_type: str, query: str) -> set[str]:
        body = client.get(f"/fhir/{resource_type}?{query}&_id={ids(resource_type)}&_count=1000").get_json()
        return {e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"}

    patients = [r for r in by_type["Patient"] if r["id"] != "pat-ex"] or by_type["Patient"]
    expected = {r["id"] for r in patients if matches_family(r, "chalmers")}
    assert expected and search("Patient", "family=chalmers") >= expected
    observations = [r for r in by_type["Observation"] if "subject" in r]
    expected = {r["id"] for r in observations if r["subject"].get("reference") == "Patient/example"}
    assert len(expected) == 30
    assert search("Observation", "subject=Patient/example") == expected
    loinc = {r["id"] for r in by_type["Observation"]
             if any(c.get("system") == "http://loinc.org" and c.get("code") == "29463-7"
                    for c in r.get("code", {}).get("coding", []))}
    assert loinc and search("Observation", "code=http://loinc.org|29463-7") == loinc
    active = {r["id"] for r in by_type["MedicationRequest"] if r.get("status") == "active"}
    assert active and search("MedicationRequest", "status=active") == active
    female = {r["id"] for r in by_type["Patient"] if r.get("gender") == "female"}
    assert search("Patient", "gender=female") == female


@pytest.mark.slow
def test_referential_integrity_refuses_the_examples_whose_targets_are_missing(checked, shared_dir):
    """Stored in rounds until no more go in (so an example's targets among the examples come first), the
    examples still refused by referential integrity each name a target that the example refers to and
    that no example provides; every other refusal is the structural one the unchecked server gives too."""
    client = checked.test_client()
    pending = {path.name: json.loads(path.read_text()) for path in example_files(shared_dir)}
    refusals: dict[str, dict] = {}
    progress = True
    while progress:
        progress = False
        for name, resource in list(pending.items()):
            response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=orjson.dumps(resource),
                                  content_type=FHIR_JSON)
            if response.status_code in (200, 201):
                del pending[name]
                refusals.pop(name, None)
                progress = True
            else:
                refusals[name] = response.get_json()
    by_integrity = {}
    for name, outcome in refusals.items():
        found = MISSING_TARGET.search(outcome["issue"][0]["diagnostics"])
        if found is not None:
            assert outcome["issue"][0]["code"] == "not-found", outcome
            by_integrity[name] = found.group(1)
    assert len(by_integrity) == REFUSED_BY_INTEGRITY
    # the structural refusals, the AuditEvents and the query-based Subscriptions
    assert len(refusals) - len(by_integrity) == 15 + 9 + len(QUERY_SUBSCRIPTIONS)
    for name, target in SOME_REFUSED_BY_INTEGRITY.items():
        assert by_integrity[name] == target
    for name, target in by_integrity.items():
        named = reference_strings(pending[name])
        assert any(ref == target or ref.startswith(f"{target}/_history/") for ref in named), (name, target)
        assert client.get(f"/fhir/{target}").status_code == 404, (name, target)
