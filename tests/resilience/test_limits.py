"""Bounded cost for every request: statement deadlines and URL length, each answered with an OperationOutcome,
the server still serving, the statement stopped in the database; and health, live apart from ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from server.app import create_app
from server.config import Settings
from server.store.deadlines import StatementLimits
from tests.auth import authenticate_app
from tests.conftest import backend, create_database
from tests.resilience.servers import assert_still_serving
from tests.support import assert_outcome, patient, unique


def test_a_url_past_the_limit_names_post_search(client) -> None:
    answer = client.get("/fhir/Patient?name=" + "a" * 8100)
    assert_outcome(answer, 414, "too-costly", text="POST [base]/[type]/_search")
    assert_still_serving(client)


@pytest.fixture()
def limited(tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """An app whose searches may run 400 ms a statement on PostgreSQL (1 ms a request on SQLite)."""
    url, drop = create_database(tmp_path)
    search_ms = 400 if backend() == "postgresql" else 1
    app = create_app(Settings.from_env({}, database_url=url, statement_limits=StatementLimits(search_ms=search_ms)))
    authenticate_app(app)
    yield app, url
    app.extensions["sharedcare"].services.database.dispose()
    drop()  # type: ignore[operator]


@pytest.mark.skipif(backend() != "postgresql", reason="waits on a PostgreSQL table lock")
def test_a_search_past_its_statement_limit_is_stopped_in_the_database(limited: tuple[Flask, str]) -> None:
    app, url = limited
    client = app.test_client()
    stored = client.post("/fhir/Patient", json=patient()).get_json()
    locking = create_engine(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with locking.connect() as locker, admin.connect() as watcher:
        locker.execute(text("LOCK TABLE resources IN ACCESS EXCLUSIVE MODE"))  # every search now waits
        locker_pid = locker.execute(text("SELECT pg_backend_pid()")).scalar_one()
        started = time.monotonic()
        search = client.get("/fhir/Patient?name=Hardy&gender=female")
        read = client.get(f"/fhir/Patient/{stored['id']}")
        assert time.monotonic() - started < 5
        assert_outcome(search, 503, "too-costly", text="The search GET Patient?name=Hardy&gender=female ran past")
        assert "0.4 s" in search.get_json()["issue"][0]["diagnostics"]
        assert_outcome(read, 503, "too-costly")
        time.sleep(1)
        running = watcher.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND pid NOT IN (pg_backend_pid(), :locker)"), {"locker": locker_pid}).scalar_one()
        assert running == 0
        locker.rollback()
    locking.dispose()
    admin.dispose()
    assert client.get(f"/fhir/Patient/{stored['id']}").status_code == 200
    assert_still_serving(client)


@pytest.mark.skipif(backend() != "sqlite", reason="the SQLite deadline")
def test_a_search_past_its_deadline_is_interrupted_on_sqlite(limited: tuple[Flask, str]) -> None:
    app, _url = limited
    client = app.test_client()
    family = unique("Family")
    entries = [{"resource": patient(name=[{"family": f"{family}{n}"}]), "request": {"method": "POST", "url": "Patient"}}
               for n in range(300)]
    assert client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
                       ).status_code == 200
    answer = client.get(f"/fhir/Patient?name:contains={family[3:]}&_total=accurate")
    assert_outcome(answer, 503, "too-costly", text="ran past")
    assert client.post("/fhir/Patient", json=patient()).status_code == 201  # writes keep their own limit
    assert client.get("/health/ready").status_code == 200


def test_health_tells_live_from_ready(fresh_app: Flask) -> None:
    anonymous = fresh_app.test_client()
    for path in ("/health", "/health/live", "/health/ready"):
        assert anonymous.get(path, headers={"Authorization": ""}).status_code == 200
    engine = fresh_app.extensions["sharedcare"].services.database.writer
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        assert anonymous.get("/health/live").status_code == 200
        not_ready = anonymous.get("/health/ready")
        assert not_ready.status_code == 503 and "sharedcare db upgrade" in not_ready.get_json()["status"]
        assert anonymous.get("/health").status_code == 503
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert anonymous.get("/health/ready").status_code == 200


@pytest.fixture()
def bundle_limited(tmp_path: Path) -> Iterator[Flask]:
    """An app whose Bundles may take 100 ms (the operation limit; each statement keeps its own)."""
    url, drop = create_database(tmp_path)
    app = create_app(Settings.from_env({}, database_url=url, statement_limits=StatementLimits(operation_ms=100)))
    authenticate_app(app)
    yield app
    app.extensions["sharedcare"].services.database.dispose()
    drop()  # type: ignore[operator]


def test_a_bundle_past_the_time_a_bundle_may_take_stops(bundle_limited: Flask) -> None:
    """Each statement of a Bundle has its limit, but ten thousand entries could hold a worker for hours: a
    transaction past the operation limit stops whole and changes nothing; a batch answers its remaining entries
    as not run, quickly."""
    client = bundle_limited.test_client()
    family = unique("Bundled")
    creates = [{"resource": patient(name=[{"family": family}]), "request": {"method": "POST", "url": "Patient"}}
               for _ in range(400)]
    started = time.monotonic()
    answer = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": creates})
    body = assert_outcome(answer, 503, "too-costly", text="a Bundle may take")
    assert "nothing was changed" in body["issue"][0]["diagnostics"]
    assert client.get(f"/fhir/Patient?family={family}&_summary=count").get_json()["total"] == 0

    reads = [{"request": {"method": "GET", "url": "Patient?_count=1"}} for _ in range(400)]
    answer = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": reads})
    assert answer.status_code == 200, answer.data[:300]
    statuses = [entry["response"]["status"] for entry in answer.get_json()["entry"]]
    assert statuses[0].startswith("200") and statuses[-1].startswith("503"), statuses[:3] + statuses[-3:]
    assert statuses == sorted(statuses, key=lambda status: status.startswith("503"))  # run until the deadline
    assert time.monotonic() - started < 30
    assert_still_serving(client)
