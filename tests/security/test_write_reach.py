"""Writes cannot widen what a caller reaches: no shared-type writes beyond the policy, no data put into a
record out of reach, no update-as-create oracle, no forged audit, and relationships made by a write are alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def test_case_management_cannot_take_over_another_practice_by_editing_organisations(server, audited) -> None:
    practice = server.call("integration", "GET", "Organization/org-B82002").json()
    taken = {**practice, "partOf": {"reference": "Organization/org-L0001"}}
    assert audited("case-management", "PUT", "Organization/org-B82002", json=taken).status_code == 403
    assert audited("case-management", "DELETE", "Organization/org-RBB").status_code == 403
    assert audited("case-management", "GET", "Patient/pb").status_code == 404
    device = {"resourceType": "Device", "patient": {"reference": "Patient/pb"}}
    assert audited("case-management", "POST", "Device", json=device).status_code == 403
    assert audited("case-management", "GET", "Device", params={"patient": "Patient/pb"}).status_code == 403


def test_a_write_may_not_name_a_person_out_of_reach(audited) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "subject": {"reference": "Patient/pa"}, "performer": [{"reference": "Patient/pb"}]}
    refused = audited("gp", "POST", "Observation", json=observation)
    assert refused.status_code == 403 and "Patient/pb" in refused.text
    assert audited("gp", "GET", "Observation", params={"performer": "Patient/pb"}).json().get("entry", []) == []


@pytest.mark.parametrize(("kind", "body"), [
    ("hospital", {"resourceType": "Encounter", "status": "in-progress", "subject": {"reference": "Patient/pb"},
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
                  "serviceProvider": {"reference": "Organization/org-RAA"},
                  "period": {"start": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}}),
    ("council", {"resourceType": "EpisodeOfCare", "status": "active", "patient": {"reference": "Patient/pb"},
                 "managingOrganization": {"reference": "Organization/org-C0001"}}),
])
def test_a_write_that_makes_a_relationship_is_a_security_alert(server, audited, kind: str, body: dict) -> None:
    """An admission or a new social care service makes the organisation hold the person: allowed (it is how
    direct care starts) and raised to the privacy officer as an alert naming the person."""
    written = audited(kind, "POST", body["resourceType"], json=body)
    assert written.status_code == 201, written.text
    rows = server.audit_rows(written.request.headers["X-Request-ID"])
    assert bool(rows[0].alert)
    with server.app.extensions["sharedcare"].services.database.writer.connect() as connection:
        reason = connection.execute(text("SELECT detail FROM audit_events WHERE pk = :pk"), {"pk": rows[0].pk}).scalar()
    assert "Patient/pb" in reason
    assert audited(kind, "GET", "Patient/pb").status_code == 200
    server.call("integration", "DELETE", f"{body['resourceType']}/{written.json()['id']}")


def test_update_as_create_tells_nothing_of_hidden_ids(audited) -> None:
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/pa"}}
    hidden = audited("gp", "PUT", "Observation/obs-b", json={**body, "id": "obs-b"})
    absent = audited("gp", "PUT", "Observation/obs-zz", json={**body, "id": "obs-zz"})
    assert hidden.status_code == absent.status_code == 403
    assert hidden.text.replace("obs-b", "X") == absent.text.replace("obs-zz", "X")
    assert audited("gp", "POST", "Observation", json=body).status_code == 201


def test_audit_events_are_never_written_or_read_through_the_record(server, audited) -> None:
    forged = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {
        "resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"requestor": True}], "source": {"observer": {"display": "x"}}},
        "request": {"method": "POST", "url": "AuditEvent"}}]}
    for kind in ("integration", "case-management"):
        assert audited(kind, "POST", "", json=forged).status_code == 405
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET",
                                                                               "url": "AuditEvent?patient=pa"}}]}
    entry = audited("gp", "POST", "", json=batch).json()["entry"][0]
    assert entry["response"]["status"].startswith("403")
    found = audited("gp", "GET", "", params={"_type": "AuditEvent"}).json()
    assert [e for e in found.get("entry", []) if e["resource"]["resourceType"] == "AuditEvent"] == []


def test_scope_constraints_are_never_widened_and_unusable_ones_grant_nothing(server) -> None:
    from tests.auth import register_client, session_for

    def session(scope: str):
        client = register_client(server.app, kind="gp", scope=scope,
                                 organization="https://fhir.nhs.uk/Id/ods-organization-code|A81001")
        return session_for(server.base, client)

    mixed = session(f"system/Observation.r system/Observation.s?category={CATEGORY}|laboratory")
    found = mixed.get(f"{server.base}/Observation", params={"subject": "Patient/pa"}, timeout=30).json()
    assert all(c["code"] == "laboratory" for e in found.get("entry", [])
               for c in e["resource"].get("category", [{}])[0].get("coding", [{}]))
    bogus = session("system/Observation.rs?bogus=1 system/Patient.rs")
    assert bogus.get(f"{server.base}/Observation/obs-a", timeout=30).status_code == 404
    assert bogus.get(f"{server.base}/Patient/pa", timeout=30).status_code == 200


def test_unreadable_input_is_a_client_error_never_a_500(audited) -> None:
    assert audited("auditor", "GET", "AuditEvent/²").status_code == 404
    assert audited("auditor", "GET", "AuditEvent", params={"_before": "²"}).status_code == 400
    assert audited("gp", "GET", "Patient", params={"_count": "²"}).status_code == 400
    assert audited("gp", "GET", "Patient/pa/_history/99999999999999999999999").status_code == 404
    created = audited("gp", "POST", "Observation", headers={"If-None-Exist": "identifier=a%00b"},
                      json={"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                            "subject": {"reference": "Patient/pa"}})
    assert created.status_code == 400
    assert audited("gp", "POST", "Patient/_search", data={"name": "a\x00b"}).status_code == 400
    assert audited("hospital", "GET", "Patient/pa", headers={"X-Purpose-Of-Use": "ETREAT",
                                                             "X-Break-Glass-Reason": ""}).status_code == 400


def test_versions_from_before_a_resource_moved_into_reach_stay_hidden(server, audited) -> None:
    moved = {"resourceType": "Observation", "id": "obs-moving", "status": "final", "code": {"text": "weight"},
             "subject": {"reference": "Patient/pb"}, "valueQuantity": {"value": 70, "unit": "kg"}}
    assert server.call("integration", "PUT", "Observation/obs-moving", json=moved).status_code == 201
    moved = {**moved, "subject": {"reference": "Patient/pa"}}
    assert server.call("integration", "PUT", "Observation/obs-moving", json=moved).status_code == 200
    assert audited("gp", "GET", "Observation/obs-moving/_history/2").status_code == 200
    assert audited("gp", "GET", "Observation/obs-moving/_history/1").status_code == 404
    versions = audited("gp", "GET", "Observation/obs-moving/_history").json()["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in versions] == ["2"]
    typed = audited("gp", "GET", "Observation/_history").json()["entry"]
    assert not any(e["resource"]["id"] == "obs-moving" and e["resource"]["meta"]["versionId"] == "1" for e in typed)
    assert audited("integration", "GET", "Observation/obs-moving/_history/1").status_code == 200
