"""Conditional create, conditional update and transaction ifNoneExist racing on one criterion spelled three ways,
across two gunicorn server processes on one database: every identifier ends with exactly one Patient."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.auth import session_for
from tests.conftest import database_with_client, start_gunicorn
from tests.support import FHIR_JSON, free_port, patient, unique, wait_for

SYSTEM = "http://x.example.org/ids"
ROUNDS = 10


def spellings(value: str) -> list[str]:
    """`identifier=http://x|a`, `identifier=http%3A%2F%2Fx%7Ca` and `identifier=http://x%7Ca`."""
    encoded = SYSTEM.replace(":", "%3A").replace("/", "%2F")
    return [f"identifier={SYSTEM}|{value}", f"identifier={encoded}%7C{value}", f"identifier={SYSTEM}%7C{value}"]


@contextmanager
def servers(url: str, count: int) -> Iterator[list[str]]:
    """`count` gunicorn servers (one gthread worker each) on the database at `url`; yields their FHIR bases."""
    started, bases = [], []
    try:
        for _ in range(count):
            port = free_port()
            started.append(start_gunicorn(url, port, WEB_CONCURRENCY="1", WORKER_CLASS="gthread", WORKER_THREADS="4"))
            bases.append(f"http://127.0.0.1:{port}/fhir")
        for base in bases:
            wait_for(base.removesuffix("/fhir") + "/health")
        yield bases
    finally:
        for server in started:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
        for server in started:
            server.wait(30)


def requests_for(value: str) -> list[tuple[int, str, str, dict, dict]]:
    """(server, method, path, headers, body) of the six racing requests on one identifier value."""
    spelt = spellings(value)
    resource = patient(identifier=[{"system": SYSTEM, "value": value}])

    def bundle(criterion: str) -> dict:
        return {"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": resource, "request": {"method": "POST", "url": "Patient", "ifNoneExist": criterion}}]}

    return [
        (0, "POST", "Patient", {"If-None-Exist": spelt[0]}, resource),
        (1, "PUT", f"Patient?{spelt[1]}", {}, resource),
        (0, "POST", "", {}, bundle(spelt[2])),
        (1, "POST", "Patient", {"If-None-Exist": spelt[2]}, resource),
        (0, "PUT", f"Patient?{spelt[0]}", {}, resource),
        (1, "POST", "", {}, bundle(spelt[1])),
    ]


@pytest.mark.slow
def test_three_spellings_of_one_criterion_create_exactly_one_resource_across_processes(tmp_path: Path) -> None:
    url, drop, client = database_with_client(tmp_path)
    values = [unique("race") for _ in range(ROUNDS)]
    with servers(url, 2) as bases:
        sessions = [[session_for(base, client) for base in bases] for _ in range(6)]
        statuses: list[tuple[str, int, str]] = []

        def racer(slot: int, value: str, barrier: threading.Barrier) -> Callable[[], None]:
            server, method, path, headers, body = requests_for(value)[slot]

            def run() -> None:
                barrier.wait()
                response = sessions[slot][server].request(
                    method, f"{bases[server]}/{path}".rstrip("/"), json=body, timeout=120,
                    headers={"Content-Type": FHIR_JSON, **headers})
                statuses.append((value, response.status_code, response.text[:300]))

            return run

        for value in values:
            barrier = threading.Barrier(6)
            threads = [threading.Thread(target=racer(slot, value, barrier)) for slot in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(180)
        failed = [status for status in statuses if status[1] not in (200, 201)]
        assert failed == [] and len(statuses) == 6 * ROUNDS, failed
        reader = sessions[0][0]
        for value in values:
            found = reader.get(f"{bases[0]}/Patient", params={"identifier": f"{SYSTEM}|{value}", "_summary": "count"},
                               timeout=60)
            assert found.json()["total"] == 1, (value, found.json())
        for pair in sessions:
            for session in pair:
                session.close()
    drop()  # type: ignore[operator]
