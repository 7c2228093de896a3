"""Each topic fires on its trigger and not otherwise, filters narrow it, the payload levels carry what they
should; handshake and heartbeat; a rolled-back write raises no event; $status and $events."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.events.conftest import B, World, subscription, wait_until
from tests.events.receiver import receiving
from tests.scr_examples import examples

TASKS = f"{B}/CodeSystem/care-task"


def focus_ids(receiver: Any, subscription_id: str) -> list[str]:
    return [e["focus"]["reference"].split("/")[1] for n in receiver.of(subscription_id) for e in n.events]


def test_care_plan_changed_fires_on_create_and_update_only(world: World, worker: Any) -> None:
    patient, other = world.patient(), world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}"))
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        plan = world.care_plan(patient)
        world.care_plan(other)  # another patient: filtered out
        changed = world.call("integration", "GET", f"CarePlan/{plan}").json()
        assert world.call("integration", "PUT", f"CarePlan/{plan}", json={**changed, "status": "completed"}
                          ).status_code == 200
        assert world.call("integration", "POST", "Condition", json={
            "resourceType": "Condition", "subject": {"reference": f"Patient/{patient}"},
            "code": {"text": "not a plan"}}).status_code == 201
        last = world.care_plan(patient)  # a later event: nothing came between
        receiver.wait_for(lambda: len(receiver.numbers(sub)) >= 3)
        assert receiver.numbers(sub) == [1, 2, 3]
        assert focus_ids(receiver, sub) == [plan, plan, last]
        references = [e["focus"]["reference"] for n in receiver.of(sub) for e in n.events]
        assert references[1] == f"CarePlan/{plan}/_history/2"


def test_practice_filter_narrows_to_the_patients_registered_there(world: World, worker: Any) -> None:
    at_a, at_b = world.patient("A81001"), world.patient("B82002")
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          "CarePlan?practice=A81001"))
        world.care_plan(at_b)
        plan_a = world.care_plan(at_a)
        receiver.wait_for(lambda: receiver.numbers(sub))
        time.sleep(0.5)
        assert focus_ids(receiver, sub) == [plan_a]


def task(patient: str, code: str, owner: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Task", "status": "requested", "intent": "order",
                            "code": {"coding": [{"system": TASKS, "code": code}]},
                            "for": {"reference": f"Patient/{patient}"}}
    if owner:
        body["owner"] = {"reference": owner}
    return body


def test_task_topics_fire_on_their_codes_and_filters(world: World, worker: Any) -> None:
    patient = world.patient("A81001")
    role = world.call("integration", "POST", "PractitionerRole", json={
        "resourceType": "PractitionerRole", "organization": {"reference": "Organization/org-L0001"}}).json()["id"]
    with receiving() as receiver:
        admission = world.subscribe("integration", subscription("case-managed-admission", receiver.url,
                                                                "Task?team=L0001"))
        by_manager = world.subscribe("integration", subscription("case-managed-admission", receiver.url,
                                                                 f"Task?case-manager=PractitionerRole/{role}"))
        eligible = world.subscribe("integration", subscription("case-finding-eligible", receiver.url,
                                                               "Task?practice=A81001"))
        team = world.subscribe("integration", subscription("case-finding-eligible", receiver.url,
                                                           "Task?team=L0001"))
        other_team = world.subscribe("integration", subscription("case-finding-eligible", receiver.url,
                                                                 "Task?team=L0002"))
        alert = world.call("integration", "POST", "Task", json=task(patient, "admission-alert",
                                                                     f"PractitionerRole/{role}")).json()["id"]
        screen = world.call("integration", "POST", "Task",
                            json=task(patient, "screen-for-case-management")).json()["id"]
        world.call("integration", "POST", "Task", json=task(patient, "assessment", f"PractitionerRole/{role}"))
        receiver.wait_for(lambda: all(receiver.numbers(s) for s in (admission, by_manager, eligible, team)))
        time.sleep(0.5)
        assert focus_ids(receiver, admission) == [alert]
        assert focus_ids(receiver, by_manager) == [alert]
        assert focus_ids(receiver, eligible) == [screen]
        assert focus_ids(receiver, team) == [screen]
        assert receiver.numbers(other_team) == []


def episode(name: str, patient: str, organisation: str) -> dict[str, Any]:
    body = dict(examples()[name])
    body["patient"] = {"reference": f"Patient/{patient}"}
    body["managingOrganization"] = {"reference": f"Organization/org-{organisation}"}
    if "identifier" in body:  # a service of its own (the SWIFT service id is unique)
        body["identifier"] = [{**body["identifier"][0], "value": f"SV{uuid.uuid4().hex[:8]}"}]
    return body


def test_episode_topics_tell_social_care_packages_from_enrolments(world: World, worker: Any) -> None:
    patient = world.patient("A81001")
    with receiving() as receiver:
        package = world.subscribe("integration", subscription("social-care-package-changed", receiver.url,
                                                              "EpisodeOfCare?council=C0001"))
        elsewhere = world.subscribe("integration", subscription("social-care-package-changed", receiver.url,
                                                                "EpisodeOfCare?council=C0002"))
        enrolment = world.subscribe("integration", subscription("programme-enrolment", receiver.url,
                                                                f"EpisodeOfCare?patient=Patient/{patient}"))
        service = world.call("integration", "POST", "EpisodeOfCare", json=episode(
            "SCR-EpisodeOfCare-SocialCareService", patient, "C0001"))
        assert service.status_code == 201, service.text
        enrolled = world.call("integration", "POST", "EpisodeOfCare", json=episode(
            "SCR-EpisodeOfCare-CaseManagement", patient, "L0001"))
        assert enrolled.status_code == 201, enrolled.text
        discharged = {**enrolled.json(), "status": "finished"}
        assert world.call("integration", "PUT", f"EpisodeOfCare/{discharged['id']}", json=discharged
                          ).status_code == 200
        receiver.wait_for(lambda: receiver.numbers(package) and len(receiver.numbers(enrolment)) >= 2)
        time.sleep(0.5)
        assert focus_ids(receiver, package) == [service.json()["id"]]
        assert focus_ids(receiver, enrolment) == [discharged["id"], discharged["id"]]
        assert receiver.numbers(elsewhere) == []


def test_payload_levels_carry_what_they_should(world: World, worker: Any) -> None:
    patient = world.patient()
    with receiving() as receiver:
        subs = {content: world.subscribe("integration", subscription(
            "care-plan-changed", receiver.url, f"CarePlan?patient=Patient/{patient}", content=content,
            headers=["X-Receiver-Key: secret-1"]))
            for content in ("empty", "id-only", "full-resource")}
        plan = world.care_plan(patient)
        receiver.wait_for(lambda: all(receiver.numbers(s) for s in subs.values()))
        stored = world.call("integration", "GET", f"CarePlan/{plan}").json()
        empty, id_only, full = (receiver.of(subs[c])[0] for c in ("empty", "id-only", "full-resource"))
        assert [e for e in empty.events if "focus" in e] == [] and len(empty.bundle["entry"]) == 1
        assert id_only.events[0]["focus"]["reference"] == f"CarePlan/{plan}/_history/1"
        assert [("resource" in e, e["fullUrl"].endswith(f"/CarePlan/{plan}")) for e in id_only.bundle["entry"][1:]] \
            == [(False, True)]
        assert full.bundle["entry"][1]["resource"] == stored
        assert full.bundle["type"] == "history" and full.status["resourceType"] == "Parameters"
        assert full.headers.get("X-Receiver-Key") == "secret-1"
        assert full.param("events-since-subscription-start") == "1"


def test_handshake_then_heartbeats_and_the_subscription_turns_active(world: World, worker: Any) -> None:
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          "CarePlan?patient=Patient/nobody", heartbeat=1))
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        assert receiver.of(sub, "handshake")[0].param("status") == "requested"
        wait_until(lambda: world.call("integration", "GET", f"Subscription/{sub}").json()["status"] == "active",
                   what="status active")
        receiver.wait_for(lambda: len(receiver.of(sub, "heartbeat")) >= 2, seconds=10)
        beats = receiver.of(sub, "heartbeat")
        assert beats[0].param("status") == "active" and beats[0].events == []
        assert beats[1].received - beats[0].received >= 0.8


def test_a_subscription_ends_at_its_end(world: World, worker: Any) -> None:
    patient = world.patient()
    end = datetime.now(UTC) + timedelta(seconds=4)
    with receiving() as receiver:
        body = subscription("care-plan-changed", receiver.url, f"CarePlan?patient=Patient/{patient}", heartbeat=1)
        sub = world.subscribe("integration", {**body, "end": end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        before = world.care_plan(patient)
        receiver.wait_for(lambda: receiver.numbers(sub))
        wait_until(lambda: world.call("integration", "GET", f"Subscription/{sub}").json()["status"] == "off",
                   what="status off after the end", seconds=20)
        assert datetime.now(UTC) >= end
        world.care_plan(patient)  # after the end: not its event
        beats = len(receiver.of(sub, "heartbeat"))
        time.sleep(2.5)
        assert focus_ids(receiver, sub) == [before]
        assert len(receiver.of(sub, "heartbeat")) == beats  # and no more heartbeats
        status = world.call("integration", "GET", f"Subscription/{sub}/$status").json()
        assert '"events-since-subscription-start"' in json.dumps(status)
        assert world.call("integration", "GET", f"Subscription/{sub}/$events").json()["entry"][0]["resource"]


def test_a_rolled_back_transaction_raises_no_event(world: World, worker: Any) -> None:
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}"))
        before = world.scalar("SELECT count(*) FROM event_outbox") + world.scalar(
            "SELECT count(*) FROM subscription_events")
        failed = world.call("integration", "POST", "", json={"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                          "subject": {"reference": f"Patient/{patient}"}},
             "request": {"method": "POST", "url": "CarePlan"}},
            {"resource": {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}},
             "request": {"method": "POST", "url": "Observation"}}]})
        assert failed.status_code == 400, failed.text
        after = world.scalar("SELECT count(*) FROM event_outbox") + world.scalar(
            "SELECT count(*) FROM subscription_events")
        assert after == before
        plan = world.care_plan(patient)
        receiver.wait_for(lambda: receiver.numbers(sub))
        assert receiver.numbers(sub) == [1] and focus_ids(receiver, sub) == [plan]


def test_status_counts_and_events_returns_what_was_missed(world: World, worker: Any) -> None:
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}"))
        plans = [world.care_plan(patient) for _ in range(4)]
        receiver.wait_for(lambda: len(receiver.numbers(sub)) >= 4)
    status = world.call("integration", "GET", f"Subscription/{sub}/$status").json()
    parameters = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert parameters["events-since-subscription-start"]["valueString"] == "4"
    assert parameters["type"]["valueCode"] == "query-status"
    missed = world.call("integration", "GET", f"Subscription/{sub}/$events?eventsSinceNumber=2&eventsUntilNumber=3"
                        "&content=full-resource").json()
    events = [p for p in missed["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event"]
    assert [e["part"][0]["valueString"] for e in events] == ["2", "3"]
    assert [e["resource"]["id"] for e in missed["entry"][1:]] == plans[1:3]
    wrong = world.call("integration", "GET", f"Subscription/{sub}/$events?eventsSinceNumber=x")
    assert wrong.status_code == 400 and wrong.json()["resourceType"] == "OperationOutcome"
    inverted = world.call("integration", "GET", f"Subscription/{sub}/$events?eventsSinceNumber=3&eventsUntilNumber=2")
    assert inverted.status_code == 400 and inverted.json()["resourceType"] == "OperationOutcome"
    polled = world.call("integration", "GET", f"Subscription/{sub}/$events?eventsSinceNumber=5")  # nothing new yet
    assert polled.status_code == 200, polled.text
    assert not [p for p in polled.json()["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event"]
    assert len(polled.json()["entry"]) == 1


def test_subscriptions_that_cannot_be_served_are_refused(world: World) -> None:
    cases = [
        (subscription("no-such-topic", "http://127.0.0.1:9/x"), "Subscription.criteria"),
        (subscription("care-plan-changed", "http://127.0.0.1:9/x", "CarePlan?status=active"),
         "Subscription.criteria.extension[0]"),
        (subscription("care-plan-changed", "ftp://127.0.0.1:9/x"), "Subscription.channel.endpoint"),
        ({**subscription("care-plan-changed", "http://127.0.0.1:9/x"), "status": "active"}, "Subscription.status"),
    ]
    for body, where in cases:
        answer = world.call("integration", "POST", "Subscription", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["issue"][0]["expression"] == [where]


def test_capability_statement_advertises_the_topics(world: World) -> None:
    statement = world.call("integration", "GET", "metadata").json()
    subscription_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription")
    canonicals = sorted(e["valueCanonical"] for e in subscription_entry.get("extension", []))
    assert canonicals == sorted(f"{B}/SubscriptionTopic/{name}" for name in (
        "care-plan-changed", "case-managed-admission", "case-finding-eligible", "social-care-package-changed",
        "programme-enrolment"))
