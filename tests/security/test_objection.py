"""A person's objection to sharing hides them from every other organisation on every path; break-glass opens
it for one request, as a security alert that raises a Task for the privacy officer."""

from __future__ import annotations

import pytest

from tests.security.world import NHS, NHS_NUMBERS, objection

OTHERS = ["hospital", "council", "case-management", "voluntary-sector"]
EMERGENCY = {"X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": "unconscious in A&E, no history available"}


@pytest.fixture(scope="module")
def objected(server):
    """pa objects to sharing; the objection is recorded by their practice (which holds that record)."""
    written = server.call("integration", "PUT", "Consent/objection-a", json=objection("a", "A81001"))
    assert written.status_code == 201, written.text
    yield server
    withdrawn = {**objection("a", "A81001"), "status": "inactive"}
    assert server.call("integration", "PUT", "Consent/objection-a", json=withdrawn).status_code == 200


def ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in response.json().get("entry", [])
            if e["resource"]["resourceType"] != "OperationOutcome"}


def outcome_codes(response) -> set[str]:
    return {issue["code"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") == "outcome"
            for issue in e["resource"]["issue"]}


@pytest.mark.parametrize("kind", OTHERS)
def test_an_objection_hides_the_person_from_every_other_organisation(objected, audited, kind: str) -> None:
    read = audited(kind, "GET", "Patient/pa")
    may_break_glass = kind in ("hospital", "case-management")
    assert read.status_code == (403 if may_break_glass else 404)
    if may_break_glass:  # the break-the-glass pattern: withheld, never shown
        assert read.json()["issue"][0]["code"] == "suppressed"
        assert "Person" not in read.text
    if kind == "case-management":
        everything = audited(kind, "GET", "Patient/pa/$everything")
        assert everything.status_code == 403 and everything.json()["issue"][0]["code"] == "suppressed"
    plans = audited(kind, "GET", "CarePlan", params={"subject": "Patient/pa"})
    assert ids(plans) == set()
    assert ("suppressed" in outcome_codes(plans)) is may_break_glass
    assert ids(audited(kind, "GET", "Patient", params={"_has:CarePlan:subject:status": "active"})) == set()
    assert ids(audited(kind, "GET", "CarePlan", params={"_include": "CarePlan:subject"})) == set()
    assert audited(kind, "GET", "CarePlan", params={"_summary": "count"}).json()["total"] == 0
    assert ids(audited(kind, "GET", "CarePlan/_history")) == set()
    status = audited(kind, "GET", "Patient/$case-status", params={"identifier": f"{NHS}|{NHS_NUMBERS['a']}"})
    if kind == "hospital":
        assert status.status_code == 403 and status.json()["issue"][0]["code"] == "suppressed"
    else:
        assert status.status_code in (403, 404)
        assert "Patient/pa" not in status.text


def test_the_recording_practice_and_the_host_still_see_the_record(objected, audited) -> None:
    assert audited("gp", "GET", "Patient/pa").status_code == 200
    assert ids(audited("gp", "GET", "CarePlan", params={"subject": "Patient/pa"})) == {"CarePlan/plan-a"}
    assert audited("integration", "GET", "Patient/pa").status_code == 200


@pytest.mark.parametrize("kind", ["hospital", "case-management"])
def test_break_glass_opens_the_record_for_one_request_with_an_alert_and_a_task(objected, audited, server,
                                                                               kind: str) -> None:
    def officer_tasks() -> set[str]:
        return ids(server.call("integration", "GET", "Task", params={"code:text": "Review a break-glass access"}))

    tasks_before = officer_tasks()
    opened = audited(kind, "GET", "Patient/pa", headers=EMERGENCY)
    assert opened.status_code == 200 and opened.json()["id"] == "pa"
    rows = server.audit_rows(opened.request.headers["X-Request-ID"])
    assert rows[0].alert is True or rows[0].alert == 1
    raised = officer_tasks() - tasks_before
    assert len(raised) == 1
    task_ref = raised.pop()
    task = server.call("integration", "GET", task_ref).json()
    assert task["owner"]["display"] == "Privacy officer" and "unconscious" in task["description"]
    assert {"reference": "Patient/pa"} in [i.get("valueReference") for i in task["input"]]
    assert audited("gp", "GET", task_ref).status_code == 404  # not shown to the person's other holders
    status = audited(kind, "GET", "Patient/$case-status", params={"identifier": f"{NHS}|{NHS_NUMBERS['a']}"},
                     headers=EMERGENCY)
    assert status.status_code == 200 and '"Patient/pa"' in status.text
    # the next request without the emergency purpose is closed again
    assert audited(kind, "GET", "Patient/pa").status_code == 403
    event = audited("auditor", "GET", "AuditEvent", params={"patient": "pa", "agent": server.clients[kind].client_id})
    alerts = [e["resource"] for e in event.json()["entry"] if e["resource"]["type"]["code"] == "110113"]
    assert alerts and alerts[0]["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"


@pytest.mark.parametrize("kind", ["gp", "council", "voluntary-sector"])
def test_kinds_whose_policy_forbids_break_glass_are_refused(objected, audited, kind: str) -> None:
    refused = audited(kind, "GET", "Patient/pb", headers=EMERGENCY)
    assert refused.status_code == 403
    assert "break the glass" in refused.json()["issue"][0]["diagnostics"]


def test_a_withdrawn_objection_shares_the_record_again(server, audited) -> None:
    assert server.call("integration", "PUT", "Consent/objection-a", json={**objection("a", "A81001"),
                                                                         "status": "inactive"}).status_code in (200,
                                                                                                               201)
    for kind in OTHERS:
        assert audited(kind, "GET", "Patient/pa").status_code == 200


def test_the_national_data_opt_out_hides_nobody_from_direct_care(server, audited) -> None:
    """Recorded (as a research-scope Consent that denies), it is for secondary uses; direct care is unchanged."""
    opt_out = {**objection("b"), "id": "ndoo-b",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                     "code": "research"}]},
               "policyRule": {"text": "National data opt-out"}}
    assert server.call("integration", "PUT", "Consent/ndoo-b", json=opt_out).status_code == 201
    assert audited("integration", "GET", "Patient/pb").status_code == 200
    assert audited("hospital", "GET", "Patient/pa").status_code == 200
