"""Fixtures for notification tests: a live server on its own database holding the shared test world, real
`sharedcare worker` processes, real receivers on localhost and clients with real tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings
from tests.auth import ClientKey, register_client, session_for
from tests.conftest import PROJECT, create_database
from tests.security.world import ORGANISATIONS, world_bundle

B = "https://sharedcare.example.org/fhir"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
WORKER_ENV = {"SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS": "true", "SUBSCRIPTION_ALLOW_HTTP": "true",
              "SUBSCRIPTION_RETRY_MAX_DELAY_S": "1", "LOG_LEVEL": "WARNING"}


def topic(name: str) -> str:
    return f"{B}/SubscriptionTopic/{name}"


def subscription(topic_name: str, endpoint: str, *filters: str, content: str = "id-only",
                 heartbeat: int | None = None, max_count: int | None = None,
                 headers: list[str] | None = None) -> dict[str, Any]:
    """A Subscription of the backport profile."""
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                               "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                                           "valueCode": content}]}}
    extensions = []
    if heartbeat is not None:
        extensions.append({"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": heartbeat})
    if max_count is not None:
        extensions.append({"url": BACKPORT + "backport-max-count", "valuePositiveInt": max_count})
    if extensions:
        channel["extension"] = extensions
    if headers:
        channel["header"] = headers
    body: dict[str, Any] = {"resourceType": "Subscription", "status": "requested", "reason": "test",
                            "criteria": topic(topic_name), "channel": channel}
    if filters:
        body["_criteria"] = {"extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": f}
                                           for f in filters]}
    return body


@dataclass
class World:
    """A live server on its own database with the shared test world, and a session per kind of client."""

    app: Any
    base: str
    database_url: str
    clients: dict[str, ClientKey] = field(default_factory=dict)
    sessions: dict[str, requests.Session] = field(default_factory=dict)

    def session(self, kind: str) -> requests.Session:
        if kind not in self.sessions:
            client = register_client(self.app, kind=kind, organization=ORGANISATIONS[kind], scope="system/*.cruds")
            self.clients[kind] = client
            self.sessions[kind] = session_for(self.base, client)
        return self.sessions[kind]

    def call(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session(kind).request(method, f"{self.base}/{path}", timeout=60, **kwargs)

    def subscribe(self, kind: str, body: dict[str, Any]) -> str:
        answer = self.call(kind, "POST", "Subscription", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def patient(self, practice: str = "A81001") -> str:
        """A new Patient registered at a practice of the world; returns its id."""
        patient_id = f"n{uuid.uuid4().hex[:12]}"
        answer = self.call("integration", "PUT", f"Patient/{patient_id}", json={
            "resourceType": "Patient", "id": patient_id, "name": [{"family": "Notified"}], "gender": "male",
            "birthDate": "1940-02-02", "generalPractitioner": [{"reference": f"Organization/org-{practice}"}]})
        assert answer.status_code == 201, answer.text
        return patient_id

    def care_plan(self, patient_id: str, kind: str = "integration", **extra: Any) -> str:
        answer = self.call(kind, "POST", "CarePlan", json={
            "resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": {"reference": f"Patient/{patient_id}"}, **extra})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.app.extensions["sharedcare"].services.database.writer.connect() as connection:
            return connection.execute(text(sql), params).scalar()


def start_world(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[World, Callable[[], None]]:
    url, drop = create_database(tmp_path_factory.mktemp(name))
    settings = Settings.from_env({}, database_url=url, subscription_allow_private=True,
                                 subscription_allow_http=True, referential_integrity="off")
    app = create_app(settings)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    world = World(app, f"http://127.0.0.1:{http.server_port}/fhir", url)
    loaded = world.call("integration", "POST", "", json=world_bundle())
    assert loaded.status_code == 200, loaded.text

    def stop() -> None:
        http.shutdown()
        for session in world.sessions.values():
            session.close()
        app.extensions["sharedcare"].services.database.dispose()
        drop()  # type: ignore[operator]

    return world, stop


def start_worker(database_url: str, **environment: str) -> subprocess.Popen:
    """`sharedcare worker` as its own process (session of its own, so a SIGKILL reaches it alone)."""
    command = str(Path(sys.executable).with_name("sharedcare"))
    env = {**os.environ, "DATABASE_URL": database_url, **WORKER_ENV, **environment}
    return subprocess.Popen([command, "worker"], cwd=PROJECT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()


def wait_until(test: Callable[[], Any], seconds: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = test()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    live, stop = start_world(tmp_path_factory, "events")
    yield live
    stop()


@pytest.fixture(scope="module")
def worker(world: World) -> Iterator[subprocess.Popen]:
    """One worker process delivering for the module's world."""
    process = start_worker(world.database_url)
    yield process
    stop_worker(process)
