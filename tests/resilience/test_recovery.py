"""The server recovers by itself when PostgreSQL ends its connections, and never misreports a write."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import Engine, create_engine, text

from tests.auth import session_for
from tests.conftest import backend
from tests.resilience.servers import RunningServer, gunicorn_server
from tests.support import assert_outcome, patient, unique

pytestmark = pytest.mark.skipif(backend() != "postgresql", reason="terminates PostgreSQL backends")

TERMINATIONS = 4
NOT_MADE = "the change was not made"
RECOVERED_WITHIN = 1.0


@dataclass(frozen=True)
class Answer:
    kind: str
    status: int
    at: float
    marker: str
    text: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with gunicorn_server(tmp_path_factory.mktemp("recovery"), WEB_CONCURRENCY="2") as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[Engine]:
    engine = create_engine(server.database_url, isolation_level="AUTOCOMMIT", poolclass=None)
    yield engine
    engine.dispose()


def terminate_server_connections(admin: Engine) -> int:
    """pg_terminate_backend of every other connection to the test database (the server's)."""
    with admin.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one())


def stored(admin: Engine, marker: str) -> bool:
    with admin.connect() as connection:
        return connection.execute(text("SELECT 1 FROM resource_versions WHERE body LIKE :marker LIMIT 1"),
                                  {"marker": f"%{marker}%"}).first() is not None


def test_reads_searches_and_writes_come_through_terminated_connections(server: RunningServer,
                                                                         admin: Engine) -> None:
    with session_for(server.base, server.client) as setup:
        first = setup.post(f"{server.base}/Patient", json=patient(), timeout=30).json()
    nhs = first["identifier"][0]["value"]
    answers: list[Answer] = []
    stop = threading.Event()

    def work(kind: str) -> None:
        with session_for(server.base, server.client) as http:
            http.get(f"{server.base}/Patient/{first['id']}", timeout=30)  # its token, before the faults
            while not stop.is_set():
                marker = unique("w")
                try:
                    if kind == "read":
                        response = http.get(f"{server.base}/Patient/{first['id']}", timeout=30)
                    elif kind == "search":
                        response = http.get(f"{server.base}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
                                            timeout=30)
                    else:
                        response = http.post(f"{server.base}/Patient", json=patient(marker), timeout=30)
                except requests.RequestException as exc:
                    answers.append(Answer(kind, 0, time.monotonic(), marker, str(exc)))
                    continue
                answers.append(Answer(kind, response.status_code, time.monotonic(), marker, response.text))

    threads = [threading.Thread(target=work, args=(kind,)) for kind in ("read", "read", "search", "search",
                                                                      "write", "write")]
    for thread in threads:
        thread.start()
    terminated: list[float] = []
    try:
        for _ in range(TERMINATIONS):
            time.sleep(1.5)
            assert terminate_server_connections(admin) > 0
            terminated.append(time.monotonic())
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    def soon_after_a_termination(answer: Answer) -> bool:
        return any(0 <= answer.at - moment <= RECOVERED_WITHIN for moment in terminated)

    assert len(answers) > 100, len(answers)
    failed = [a for a in answers if a.status not in (200, 201)]
    assert all(a.status == 503 for a in failed), [(a.kind, a.status, a.text[:300]) for a in failed]
    late = [a for a in failed if a.kind != "write" and not soon_after_a_termination(a)]
    assert late == [], [(a.kind, a.status, a.text[:300]) for a in late]
    assert not any(NOT_MADE in a.text for a in answers if a.kind != "write")
    for answer in (a for a in answers if a.kind == "write"):
        if answer.status == 201:
            assert stored(admin, answer.marker), answer
        elif NOT_MADE in answer.text:
            assert not stored(admin, answer.marker), answer
    with session_for(server.base, server.client) as http:  # and afterwards, everything answers
        assert http.get(f"{server.base}/Patient/{first['id']}", timeout=30).status_code == 200
        assert http.post(f"{server.base}/Patient", json=patient(), timeout=30).status_code == 201
    with session_for(server.base, server.client) as http:
        for _ in range(4):  # pooled connections are not pinged when taken: what meets a dead one recovers itself
            assert terminate_server_connections(admin) > 0
            refused = unique("refused")  # its audit record is the first thing the serving process writes
            assert http.get(f"{server.base}/NoSuchType/1", headers={"X-Request-ID": refused},
                            timeout=30).status_code == 404
            assert audited(admin, refused)
        for _ in range(3):
            assert terminate_server_connections(admin) > 0
            with session_for(server.base, server.client) as fresh:  # a token first, then a write and a read
                assert fresh.post(f"{server.base}/Patient", json=patient(), timeout=30).status_code == 201
                assert fresh.get(f"{server.base}/Patient/{first['id']}", timeout=30).status_code == 200
    assert server.alive()


def audited(admin: Engine, request_id: str) -> bool:
    with admin.connect() as connection:
        return connection.execute(text("SELECT 1 FROM audit_events WHERE request_id = :r"),
                                  {"r": request_id}).first() is not None


def test_a_write_whose_commit_loses_its_connection_answers_that_its_outcome_is_unknown(
        server: RunningServer, admin: Engine) -> None:
    marker = unique("commit-dies")
    with admin.connect() as connection:  # at COMMIT, a deferred trigger ends the connection of this write
        connection.execute(text(f"""
            CREATE FUNCTION end_my_connection() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF position('{marker}' in NEW.body) > 0 THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                    PERFORM pg_sleep(5);
                END IF;
                RETURN NULL;
            END $$"""))
        connection.execute(text("CREATE CONSTRAINT TRIGGER end_at_commit AFTER INSERT ON resource_versions "
                                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION end_my_connection()"))
    try:
        with session_for(server.base, server.client) as http:
            answer = http.post(f"{server.base}/Patient", json=patient(marker), timeout=60)
            body = assert_outcome(answer, 503, "transient", text="unknown")
            diagnostics = body["issue"][0]["diagnostics"]
            assert "If-None-Exist" in diagnostics and "If-Match" in diagnostics, diagnostics
            assert NOT_MADE not in answer.text
            assert http.post(f"{server.base}/Patient", json=patient(), timeout=30).status_code == 201
    finally:
        with admin.connect() as connection:
            connection.execute(text("DROP TRIGGER end_at_commit ON resource_versions"))
            connection.execute(text("DROP FUNCTION end_my_connection()"))
    assert server.alive()
