"""With AUDIT_SPOOL_DIR, records of reads and refusals go through a local spool per process: each answered
request's record reaches the trail exactly once, through concurrent shippers, rotation, and kill -9."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from server.app import create_app
from server.config import Settings
from server.security.audit import AuditRecord
from server.store import auditspool
from tests.auth import authenticate_app, client_for, register_client
from tests.conftest import PROJECT, create_database
from tests.support import patient

AUDITOR = {"kind": "auditor", "organization": "https://fhir.nhs.uk/Id/ods-organization-code|AUDIT",
           "scope": "system/AuditEvent.rs"}

KILLED_CHILD = """
import os, signal, sys
from server.store import auditspool
auditspool.SHIP_EVERY = 3600.0  # this process never ships its own spool: its records stay there
from server.app import create_app
from server.config import Settings
from tests.auth import authenticate_app
url, spool, patient_id, prefix, count = sys.argv[1:6]
app = create_app(Settings.from_env({}, database_url=url, audit_spool_dir=spool))
authenticate_app(app)
client = app.test_client()
for index in range(int(count)):
    answer = client.get(f"/fhir/Patient/{patient_id}", headers={"X-Request-ID": f"{prefix}-{index}"})
    print(answer.status_code, flush=True)
answer = client.get("/fhir/Patient/nobody-here", headers={"X-Request-ID": f"{prefix}-absent"})
print(answer.status_code, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def spooled_app(url: str, spool: Path) -> Flask:
    app = create_app(Settings.from_env({}, database_url=url, audit_spool_dir=str(spool)))
    try:
        authenticate_app(app)
    except BaseException:
        close(app)
        raise
    return app


def close(app: Flask) -> None:
    services = app.extensions["sharedcare"].services
    if services.audit.spool is not None:
        services.audit.spool.close()
    services.database.dispose()


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[str]:
    url, drop = create_database(tmp_path)
    yield url
    drop()  # type: ignore[operator]


def kept(app: Flask, prefix: str) -> Counter[str]:
    """How many audit rows each request id with `prefix` has in the trail."""
    with app.extensions["sharedcare"].services.database.writer.connect() as connection:
        return Counter(connection.execute(text("SELECT request_id FROM audit_events WHERE request_id LIKE :p"),
                                          {"p": f"{prefix}-%"}).scalars())


def spools(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"*{auditspool.SUFFIX}"))


def request_ids(bundle: dict[str, Any]) -> list[str]:
    return [entity["what"]["identifier"]["value"] for entry in bundle.get("entry", [])
            for entity in entry["resource"]["entity"] if entity.get("type", {}).get("code") == "XrequestId"]


def test_reads_and_refusals_reach_the_auditor_exactly_once(database: str, tmp_path: Path) -> None:
    app = spooled_app(database, tmp_path / "spool")
    try:
        fhir = app.test_client()
        person = fhir.post("/fhir/Patient", json=patient()).get_json()["id"]
        prefix = f"spooled-{uuid.uuid4().hex[:8]}"
        for index in range(30):
            assert fhir.get(f"/fhir/Patient/{person}", headers={"X-Request-ID": f"{prefix}-{index}"}).status_code == 200
        assert fhir.get("/fhir/Patient/absent", headers={"X-Request-ID": f"{prefix}-absent"}).status_code == 404
        assert fhir.delete("/fhir/AuditEvent/1", headers={"X-Request-ID": f"{prefix}-refused"}).status_code == 405
        [spool] = spools(tmp_path / "spool")
        assert spool.read_bytes().count(prefix.encode()) == 32  # one line each, before any shipment is awaited
        auditor = client_for(app, register_client(app, **AUDITOR))
        found = auditor.get(f"/fhir/AuditEvent?agent={app.extensions['tests.client'].client_id}&_count=1000")
        assert found.status_code == 200
        seen = Counter(request_id for request_id in request_ids(found.get_json()) if request_id.startswith(prefix))
        assert seen == Counter([*(f"{prefix}-{i}" for i in range(30)), f"{prefix}-absent", f"{prefix}-refused"])
        by_patient = auditor.get(f"/fhir/AuditEvent?patient={person}&_count=1000").get_json()
        assert {f"{prefix}-{i}" for i in range(30)} <= set(request_ids(by_patient))
        assert set(kept(app, prefix).values()) == {1}
    finally:
        close(app)
    assert spools(tmp_path / "spool") == []  # a closing process ships its spool and removes it
    app = spooled_app(database, tmp_path / "spool")
    try:
        assert len(kept(app, prefix)) == 32 and set(kept(app, prefix).values()) == {1}
    finally:
        close(app)


def test_concurrent_shippers_and_rotation_keep_each_record_once(database: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditspool, "ROTATE_BYTES", 8 * 1024)  # many fresh spools within the test
    app = spooled_app(database, tmp_path / "spool")
    services = app.extensions["sharedcare"].services
    prefix = f"shipped-{uuid.uuid4().hex[:8]}"
    writing = threading.Event()
    writing.set()
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        for index in range(150):
            record = AuditRecord(client="spool-test", interaction="read", action="R",
                                 request_id=f"{prefix}-{worker}-{index}", status=200, patients={f"p{index % 7}"})
            services.audit.keep(services.database, record)

    def ship() -> None:
        try:
            while writing.is_set():
                services.audit.ship_outstanding()
        except BaseException as exc:  # reported below
            failures.append(exc)

    try:
        writers = [threading.Thread(target=append, args=(worker,)) for worker in range(4)]
        shippers = [threading.Thread(target=ship) for _ in range(3)]
        for thread in [*writers, *shippers]:
            thread.start()
        for thread in writers:
            thread.join(120)
        writing.clear()
        for thread in shippers:
            thread.join(120)
        assert failures == []
        services.audit.ship_outstanding()
        counts = kept(app, prefix)
        assert len(counts) == 600 and set(counts.values()) == {1}
        with services.database.writer.connect() as connection:
            named = connection.execute(text("SELECT count(*) FROM audit_patients p JOIN audit_events e "
                                            "ON e.pk = p.audit_pk WHERE e.request_id LIKE :p"),
                                       {"p": f"{prefix}-%"}).scalar_one()
        assert named == 600
    finally:
        close(app)
    assert spools(tmp_path / "spool") == []


def test_a_killed_process_s_spool_is_shipped_once_by_the_auditor_and_on_restart(database: str,
                                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    app = spooled_app(database, folder)
    try:
        person = app.test_client().post("/fhir/Patient", json=patient()).get_json()["id"]
    finally:
        close(app)
    prefix = f"killed-{uuid.uuid4().hex[:8]}"
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, database, str(folder), person, prefix, "40"],
                           cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr[-2000:]
    assert child.stdout.split() == ["200"] * 40 + ["404"]  # every one answered
    [left] = spools(folder)
    app = create_app(Settings.from_env({}, database_url=database))  # no spool: nothing ships it
    try:
        assert kept(app, prefix) == Counter()  # the answered records were only in the killed process's spool
    finally:
        app.extensions["sharedcare"].services.database.dispose()
    app = spooled_app(database, folder)  # a restart: its thread takes the dead process's spool over at once
    try:
        auditor = client_for(app, register_client(app, **AUDITOR))
        answered = auditor.get(f"/fhir/AuditEvent?patient={person}&_count=1000").get_json()
        assert Counter(i for i in request_ids(answered) if i.startswith(prefix)) == Counter(
            f"{prefix}-{i}" for i in range(40))
        deadline = time.monotonic() + 60
        while left.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left.exists()
        counts = kept(app, prefix)
        assert len(counts) == 41 and set(counts.values()) == {1}
    finally:
        close(app)


def test_a_busy_process_ships_what_its_spool_held_in_one_transaction_per_round(
        database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditspool, "SHIP_EVERY", 3600.0)  # the rounds below are the only shipments
    app = spooled_app(database, tmp_path / "spool")
    services = app.extensions["sharedcare"].services
    spool = services.audit.spool
    prefix = f"busy-{uuid.uuid4().hex[:8]}"

    def record(index: int) -> None:
        services.audit.keep(services.database, AuditRecord(client="spool-test", interaction="read", action="R",
                                                           request_id=f"{prefix}-{index}", status=200))

    shipments: list[int | None] = []
    ship = spool.ship

    def ship_while_requests_arrive(path: Path) -> int | None:
        mark = ship(path)
        shipments.append(mark)
        if len(shipments) < 50:
            record(1000 + len(shipments))  # a request answered while this shipment ran
        return mark

    try:
        for index in range(20):
            record(index)
        spool.ship = ship_while_requests_arrive
        spool.ship_own()
        assert len(shipments) == 1  # what arrived meanwhile waits for the next round
        assert len(kept(app, prefix)) == 20
        spool.ship_own()
        assert len(shipments) == 2 and len(kept(app, prefix)) == 21
    finally:
        close(app)
