"""kill -9 of the server under concurrent reads and writes loses no audit record of an answered request, and
keeps none twice: written by the requests themselves, or through spools (AUDIT_SPOOL_DIR) that a restart ships."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from server.app import create_app
from server.config import Settings
from server.store.auditspool import SUFFIX
from tests.auth import session_for
from tests.conftest import database_with_client, start_gunicorn
from tests.support import free_port, patient, wait_for

READERS, WRITERS = 4, 2


@pytest.mark.slow
@pytest.mark.parametrize("spooled", [False, True], ids=["direct", "spooled"])
def test_every_answered_request_keeps_its_audit_record_through_kill_9(tmp_path: Path, spooled: bool) -> None:
    url, drop, client = database_with_client(tmp_path)
    spool = tmp_path / "spool"
    port = free_port()
    server = start_gunicorn(url, port, WEB_CONCURRENCY="2", AUDIT_SPOOL_DIR=str(spool) if spooled else "")
    base = f"http://127.0.0.1:{port}/fhir"
    answered: list[str] = []
    stop = threading.Event()
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        with session_for(base, client) as setup:
            first = setup.post(f"{base}/Patient", json=patient(), timeout=30).json()

        def work(writing: bool) -> None:
            with session_for(base, client) as http:
                while not stop.is_set():
                    request_id = f"kill-{uuid.uuid4().hex}"
                    headers = {"X-Request-ID": request_id}
                    try:
                        if writing:
                            response = http.post(f"{base}/Patient", json=patient(), headers=headers, timeout=10)
                        else:
                            response = http.get(f"{base}/Patient/{first['id']}", headers=headers, timeout=10)
                    except requests.RequestException:
                        continue  # not answered: the server went away mid-request
                    if response.status_code < 500:
                        answered.append(request_id)

        threads = [threading.Thread(target=work, args=(i < WRITERS,)) for i in range(READERS + WRITERS)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        os.killpg(server.pid, signal.SIGKILL)  # the master and every worker, mid-request
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        stop.set()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
    assert len(answered) > 50, len(answered)
    if spooled:
        services = create_app(Settings.from_env({}, database_url=url, audit_spool_dir=str(spool))
                              ).extensions["sharedcare"].services
        own = services.audit.spool.current.path
        deadline = time.monotonic() + 60  # the restart ships the dead workers' spools and removes them
        while set(spool.rglob(f"*{SUFFIX}")) - {own} and time.monotonic() < deadline:
            time.sleep(0.2)
        services.audit.spool.close()
        services.database.dispose()
        assert list(spool.rglob(f"*{SUFFIX}")) == []
    kept = kept_request_ids(url)
    missing = [request_id for request_id in answered if request_id not in kept]
    assert missing == [], f"{len(missing)} of {len(answered)} answered requests have no audit record"
    assert [request_id for request_id, count in kept.items() if count > 1] == []
    drop()  # type: ignore[operator]


def kept_request_ids(url: str) -> Counter[str]:
    """The test's request ids in the audit trail, with how many records each has."""
    engine = create_engine(url)
    with engine.connect() as connection:
        kept = Counter(connection.execute(text("SELECT request_id FROM audit_events WHERE request_id LIKE 'kill-%'"))
                       .scalars())
    engine.dispose()
    return kept
