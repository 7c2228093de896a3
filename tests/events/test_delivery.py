"""Zero loss: a receiver down for a while, a worker killed with SIGKILL mid-delivery, two workers at once, a
retry horizon that runs out, database connections cut; after each every event arrives, numbers contiguous,
in order, and a repeat carries the same number."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import backend
from tests.events.conftest import World, start_worker, stop_worker, subscription, wait_until
from tests.events.receiver import Receiver, receiving


@pytest.fixture()
def workers(world: World) -> Iterator[list[Any]]:
    """Worker processes a test starts (`workers.append(start_worker(...))`); all stopped after it."""
    started: list[Any] = []
    yield started
    for process in started:
        stop_worker(process)


def delivered_in_order(receiver: Receiver, subscription_id: str, count: int) -> None:
    """Every number 1..count arrived; each notification carries contiguous numbers that continue what was
    taken before (a repeat starts at or before the next number, never after: no gap, no reordering); a
    repeated number names the same focus."""
    taken = 0
    focus: dict[int, str] = {}
    for notification in receiver.of(subscription_id):
        numbers = notification.numbers
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
        assert numbers[0] <= taken + 1, (taken, numbers)
        for event in notification.events:
            number = int(event["event-number"])
            assert focus.setdefault(number, event["focus"]["reference"]) == event["focus"]["reference"]
        taken = max(taken, numbers[-1])
    assert taken == count and sorted(focus) == list(range(1, count + 1))


def test_a_receiver_down_for_a_while_gets_every_event_in_order(world: World, workers: list[Any]) -> None:
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}", max_count=3))
        workers.append(start_worker(world.database_url))
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        receiver.answer = 503
        for _ in range(12):
            world.care_plan(patient)
        wait_until(lambda: world.scalar("SELECT attempts FROM subscriptions WHERE id = :s", s=sub) >= 2,
                   what="failed attempts")
        assert receiver.numbers(sub) == []
        status = world.call("integration", "GET", f"Subscription/{sub}/$status").json()
        assert "answered 503" in str(status)  # why it is failing, while it is retried
        health = requests.get(world.base.removesuffix("/fhir") + "/health", timeout=10).json()["notifications"]
        assert health["outboxDepth"] >= 12 and health["oldestUndeliveredAgeSeconds"] > 0
        receiver.answer = 200
        receiver.wait_for(lambda: len(set(receiver.numbers(sub))) >= 12)
        delivered_in_order(receiver, sub, 12)
        assert receiver.numbers(sub) == list(range(1, 13))
        wait_until(lambda: requests.get(world.base.removesuffix("/fhir") + "/health", timeout=10).json()[
            "notifications"]["outboxDepth"] == 0, what="the backlog drained")


def test_a_worker_killed_mid_delivery_loses_nothing(world: World, workers: list[Any]) -> None:
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}", max_count=2))
        first = start_worker(world.database_url)
        workers.append(first)
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        receiver.delay = 1.5  # the endpoint takes its time: the worker is killed while it waits
        for _ in range(10):
            world.care_plan(patient)
        wait_until(lambda: receiver.in_flight.get(sub), what="a delivery in flight")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        receiver.delay = 0
        workers.append(start_worker(world.database_url))
        receiver.wait_for(lambda: len(set(receiver.numbers(sub))) >= 10, seconds=60)
        delivered_in_order(receiver, sub, 10)
        receiver.wait_for(lambda: not any(receiver.in_flight.values()))  # the killed worker's request is answered
        delivered_in_order(receiver, sub, 10)
        assert len(receiver.numbers(sub)) > 10


def test_two_workers_never_send_an_event_concurrently_twice(world: World, workers: list[Any]) -> None:
    patient = world.patient()
    with receiving() as receiver:
        subs = [world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                            f"CarePlan?patient=Patient/{patient}", max_count=3))
                for _ in range(4)]
        receiver.delay = 0.05
        workers.extend([start_worker(world.database_url), start_worker(world.database_url)])
        for _ in range(30):
            world.care_plan(patient)
        receiver.wait_for(lambda: all(len(set(receiver.numbers(s))) >= 30 for s in subs), seconds=90)
        assert receiver.overlaps == []
        for sub in subs:
            delivered_in_order(receiver, sub, 30)
            assert receiver.numbers(sub) == list(range(1, 31))  # nothing was sent twice


def test_past_the_retry_horizon_the_subscription_errs_and_its_events_stay(world: World, workers: list[Any]) -> None:
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}"))
        workers.append(start_worker(world.database_url, SUBSCRIPTION_RETRY_HOURS="0.0005"))  # 1.8 s
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        receiver.answer = 500
        plans = [world.care_plan(patient) for _ in range(2)]
        errored = wait_until(lambda: (lambda s: s if s["status"] == "error" else None)(
            world.call("integration", "GET", f"Subscription/{sub}").json()), what="status error")
        assert "answered 500" in errored["error"]
        status = world.call("integration", "GET", f"Subscription/{sub}/$status").json()
        parameters = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
        assert parameters["status"]["valueCode"] == "error"
        assert "answered 500" in parameters["error"]["valueCodeableConcept"]["text"]
        missed = world.call("integration", "GET", f"Subscription/{sub}/$events").json()
        assert [e["fullUrl"].rsplit("/", 1)[-1] for e in missed["entry"][1:]] == plans
        receiver.answer = 200  # the receiver is back: asking again resumes where it stopped
        asked = world.call("integration", "PUT", f"Subscription/{sub}", json={**errored, "status": "requested"})
        assert asked.status_code == 200, asked.text
        receiver.wait_for(lambda: len(receiver.numbers(sub)) >= 2)
        delivered_in_order(receiver, sub, 2)


@pytest.mark.skipif(backend() != "postgresql", reason="cuts PostgreSQL connections")
def test_cut_database_connections_lose_nothing(world: World, workers: list[Any]) -> None:
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}"))
        workers.append(start_worker(world.database_url))
        receiver.wait_for(lambda: receiver.of(sub, "handshake"))
        for _ in range(5):
            world.care_plan(patient)
        name = world.database_url.rsplit("/", 1)[-1]
        world.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE datname = :d AND pid <> pg_backend_pid()", d=name)
        time.sleep(0.5)
        for _ in range(5):
            world.care_plan(patient)
        receiver.wait_for(lambda: len(set(receiver.numbers(sub))) >= 10, seconds=60)
        delivered_in_order(receiver, sub, 10)


def test_a_burst_written_before_the_worker_starts_arrives_whole(world: World, workers: list[Any]) -> None:
    """More events than one search's `_id` takes, all in the outbox when the worker starts (one transaction
    Bundle, server-assigned ids): every one is numbered and sent."""
    patient = world.patient()
    with receiving() as receiver:
        sub = world.subscribe("integration", subscription("care-plan-changed", receiver.url,
                                                          f"CarePlan?patient=Patient/{patient}", max_count=100))
        plan = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "subject": {"reference": f"Patient/{patient}"}}
        written = world.call("integration", "POST", "", json={"resourceType": "Bundle", "type": "transaction",
                                                              "entry": [{"resource": plan, "request": {
                                                                  "method": "POST", "url": "CarePlan"}}] * 250})
        assert written.status_code == 200, written.text[:300]
        workers.append(start_worker(world.database_url))
        receiver.wait_for(lambda: len(set(receiver.numbers(sub))) >= 250, seconds=60)
        delivered_in_order(receiver, sub, 250)
