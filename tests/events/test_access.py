"""A subscription learns only of what its owner may read: its organisation's people, through the policy in
force when the event is numbered and again when it is sent; an objection hides a person from it; nobody
else reads, checks or pages through another organisation's subscription."""

from __future__ import annotations

import time
from typing import Any

from tests.events.conftest import World, subscription, wait_until
from tests.events.receiver import receiving
from tests.security.world import objection


def plan_ids(receiver: Any, subscription_id: str) -> list[str]:
    return [e["focus"]["reference"].split("/")[1] for n in receiver.of(subscription_id) for e in n.events]


def test_a_subscription_cannot_learn_of_a_patient_its_owner_cannot_read(world: World, worker: Any) -> None:
    with receiving() as receiver:
        gp = world.subscribe("gp", subscription("care-plan-changed", receiver.url))  # no filter: all it reaches
        other_patient = world.care_plan("pb")  # registered at B82002
        own_patient = world.care_plan("pa")  # registered at A81001, the gp's practice
        receiver.wait_for(lambda: receiver.numbers(gp))
        time.sleep(0.5)
        assert plan_ids(receiver, gp) == [own_patient]
        assert other_patient not in str([n.bundle for n in receiver.of(gp)])


def test_full_resource_sends_only_what_the_owner_reads(world: World, worker: Any) -> None:
    with receiving() as receiver:
        gp = world.subscribe("gp", subscription("care-plan-changed", receiver.url, "CarePlan?patient=Patient/pb",
                                                content="full-resource"))
        world.care_plan("pb")
        mine = world.subscribe("gp", subscription("care-plan-changed", receiver.url, "CarePlan?patient=Patient/pa",
                                                  content="full-resource"))
        plan = world.care_plan("pa")
        receiver.wait_for(lambda: receiver.numbers(mine))
        time.sleep(0.5)
        assert receiver.numbers(gp) == []
        assert receiver.of(mine)[0].bundle["entry"][1]["resource"]["id"] == plan


def test_an_objection_suppresses_delivery_to_the_organisations_it_hides_the_person_from(world: World,
                                                                                         worker: Any) -> None:
    with receiving() as receiver:
        hospital = world.subscribe("hospital", subscription("care-plan-changed", receiver.url,
                                                            "CarePlan?patient=Patient/pa"))
        gp = world.subscribe("gp", subscription("care-plan-changed", receiver.url, "CarePlan?patient=Patient/pa"))
        before = world.care_plan("pa")
        receiver.wait_for(lambda: receiver.numbers(hospital) and receiver.numbers(gp))
        recorded = world.call("integration", "PUT", "Consent/objection-a", json=objection("a", "A81001"))
        assert recorded.status_code in (200, 201), recorded.text
        try:
            after = world.care_plan("pa")
            receiver.wait_for(lambda: len(receiver.numbers(gp)) >= 2)
            time.sleep(0.5)
            assert plan_ids(receiver, gp) == [before, after]  # the practice that recorded it still holds them
            assert plan_ids(receiver, hospital) == [before]
        finally:
            assert world.call("integration", "DELETE", "Consent/objection-a").status_code in (200, 204)


def test_another_organisation_sees_no_subscription_of_others(world: World) -> None:
    hospital = world.subscribe("hospital", subscription("care-plan-changed", "http://127.0.0.1:9/hook"))
    for path in (f"Subscription/{hospital}", f"Subscription/{hospital}/$status", f"Subscription/{hospital}/$events"):
        answer = world.call("gp", "GET", path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["resourceType"] == "OperationOutcome"
    listed = world.call("gp", "GET", "Subscription").json()
    assert hospital not in str(listed)
    assert world.call("hospital", "GET", f"Subscription/{hospital}/$status").status_code == 200
    assert world.call("gp", "PUT", f"Subscription/{hospital}", json={
        **subscription("care-plan-changed", "http://127.0.0.1:9/other"), "id": hospital}).status_code in (403, 404)


def test_endpoints_are_https_and_public_unless_allowed(tmp_path: Any) -> None:
    from server.app import create_app
    from server.config import Settings
    from tests.auth import authenticate_app
    from tests.conftest import create_database

    url, drop = create_database(tmp_path)
    app = create_app(Settings.from_env({}, database_url=url))
    try:
        authenticate_app(app)
        client = app.test_client()
        for endpoint in ("http://example.org/hook", "https://127.0.0.1/hook", "https://10.1.2.3/hook",
                         "https://[::1]/hook", "https://localhost/hook", "https://169.254.169.254/latest"):
            answer = client.post("/fhir/Subscription", json=subscription("care-plan-changed", endpoint))
            assert answer.status_code == 422, (endpoint, answer.get_data(as_text=True))
            assert answer.get_json()["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
        accepted = client.post("/fhir/Subscription", json=subscription("care-plan-changed", "https://93.184.215.14/h"))
        assert accepted.status_code == 201, accepted.get_data(as_text=True)
    finally:
        app.extensions["sharedcare"].services.database.dispose()
        drop()  # type: ignore[operator]


def test_each_notification_that_carried_events_is_audited_as_its_owner_s_access(world: World, worker: Any) -> None:
    patient = world.patient()
    with receiving() as receiver:
        gp = world.subscribe("gp", subscription("care-plan-changed", receiver.url,
                                                f"CarePlan?patient=Patient/{patient}"))
        receiver.wait_for(lambda: receiver.of(gp, "handshake"))
        plan = world.care_plan(patient)
        receiver.wait_for(lambda: receiver.numbers(gp))

    def notifications() -> list[dict[str, Any]]:
        found = world.call("auditor", "GET", "AuditEvent", params={"patient": patient, "_count": "100"}).json()
        return [entry["resource"] for entry in found.get("entry", [])
                if any(e.get("what", {}).get("reference") == f"Subscription/{gp}" for e in entry["resource"]["entity"])]

    [event] = wait_until(notifications, what="the notification's audit record")  # the handshake carried no event
    assert event["subtype"][0]["code"] == "operation" and event["outcome"] == "0"
    assert event["agent"][0]["who"]["identifier"]["value"] == world.clients["gp"].client_id
    assert f"Patient/{patient}" in [e.get("what", {}).get("reference") for e in event["entity"]]
    assert "notification of events 1-1 (id-only)" in event["outcomeDesc"]
    assert plan not in str(event)  # the record names the person and the subscription, not what was sent
