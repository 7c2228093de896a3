"""Servers for fault tests: gunicorn with the project's own configuration on a fresh database; still serving?"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.auth import ClientKey
from tests.conftest import database_with_client, start_gunicorn
from tests.support import free_port, wait_for


def assert_still_serving(client: Any) -> None:
    """An app's test client still answers searches and is ready."""
    assert client.get("/fhir/Patient?_count=1").status_code == 200
    assert client.get("/health/ready").status_code == 200


@dataclass
class RunningServer:
    """A gunicorn server: its root URL, FHIR base, database URL, a registered client and the process."""

    root: str
    base: str
    database_url: str
    client: ClientKey
    process: subprocess.Popen[bytes]
    port: int

    def alive(self) -> bool:
        return self.process.poll() is None


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


@contextmanager
def gunicorn_server(tmp_path: Path, **environment: str) -> Iterator[RunningServer]:
    """A fresh database with a registered client (kind integration), served by gunicorn with the project's
    configuration (`environment` adds variables, such as WEB_CONCURRENCY)."""
    url, drop, client = database_with_client(tmp_path)
    port = free_port()
    process = start_gunicorn(url, port, **environment)
    root = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{root}/health")
        yield RunningServer(root, f"{root}/fhir", url, client, process, port)
    finally:
        stop(process)
        drop()
