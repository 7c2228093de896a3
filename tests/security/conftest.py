"""Fixtures for access tests: a server over real HTTP on its own database, the shared test world, a client
of every kind (tokens from the token endpoint) and a voluntary-sector kind added as a policy file only."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings
from tests.auth import ClientKey, register_client, session_for
from tests.conftest import create_database
from tests.security.world import ORGANISATIONS, VOLUNTARY_POLICY, world_bundle

SCOPES = {"voluntary-sector": "system/Patient.rs system/CarePlan.rs system/CareTeam.rs",
          "auditor": "system/AuditEvent.rs"}


class Server:
    """A live server, its app, and a session per kind of client."""

    def __init__(self, app: Any, base: str) -> None:
        self.app = app
        self.base = base
        self.clients: dict[str, ClientKey] = {}
        self.sessions: dict[str, requests.Session] = {}

    def session(self, kind: str) -> requests.Session:
        if kind not in self.sessions:
            client = register_client(self.app, kind=kind, organization=ORGANISATIONS[kind],
                                     scope=SCOPES.get(kind, "system/*.cruds"))
            self.clients[kind] = client
            self.sessions[kind] = session_for(self.base, client)
        return self.sessions[kind]

    def call(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request as a client of `kind`, with its own request id (to find its audit record)."""
        headers = {"X-Request-ID": f"matrix-{uuid.uuid4().hex}", **kwargs.pop("headers", {})}
        url = path if path.startswith("http") else f"{self.base}/{path}"
        return self.session(kind).request(method, url, headers=headers, timeout=60, **kwargs)

    def audit_rows(self, request_id: str) -> list[Any]:
        engine = self.app.extensions["sharedcare"].services.database.writer
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT status, client, alert, pk FROM audit_events "
                                                "WHERE request_id = :r"), {"r": request_id}))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("policies")
    (folder / "voluntary-sector.yaml").write_text(VOLUNTARY_POLICY, encoding="utf-8")
    url, drop = create_database(tmp_path_factory.mktemp("access"))
    app = create_app(Settings.from_env({}, database_url=url, access_policy_dir=str(folder)))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    live = Server(app, f"http://127.0.0.1:{http.server_port}/fhir")
    loaded = live.call("integration", "POST", "", json=world_bundle())
    assert loaded.status_code == 200, loaded.text
    yield live
    http.shutdown()
    for session in live.sessions.values():
        session.close()
    app.extensions["sharedcare"].services.database.dispose()
    drop()  # type: ignore[operator]


@pytest.fixture()
def audited(server: Server) -> Callable[..., requests.Response]:
    """`call` that also checks the request left exactly one audit record with the answered status."""
    def call(kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = server.call(kind, method, path, **kwargs)
        request_id = response.request.headers["X-Request-ID"]
        rows = server.audit_rows(request_id)
        assert len(rows) == 1, (method, path, rows)
        assert rows[0].status == response.status_code, (method, path, rows, response.text[:300])
        return response
    return call
