"""kill -9 of the server under concurrent reads and writes loses no audit record of an answered request."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.auth import session_for
from tests.conftest import database_with_client, start_gunicorn
from tests.support import free_port, patient, wait_for

READERS, WRITERS = 4, 2


@pytest.mark.slow
def test_every_answered_request_keeps_its_audit_record_through_kill_9(tmp_path: Path) -> None:
    url, drop, client = database_with_client(tmp_path)
    port = free_port()
    server = start_gunicorn(url, port, WEB_CONCURRENCY="2")
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
    engine = create_engine(url)
    with engine.connect() as connection:
        kept = set(connection.execute(text("SELECT request_id FROM audit_events WHERE request_id LIKE 'kill-%'"))
                   .scalars())
    engine.dispose()
    missing = [request_id for request_id in answered if request_id not in kept]
    assert missing == [], f"{len(missing)} of {len(answered)} answered requests have no audit record"
    drop()  # type: ignore[operator]
