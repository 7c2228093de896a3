"""Benchmark plumbing: scratch PostgreSQL databases, gunicorn processes, wrk runs and Synthea bundles."""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(prefix: str = "bench", keep: bool = False) -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards unless kept."""
    from server.store.migrate import upgrade

    name = f"sharedcare_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def refresh_statistics(url: str) -> None:
    """VACUUM ANALYZE after a bulk load, as autovacuum would in service (it is off on the benchmark host)."""
    from server.store.db import Database
    from server.store.maintenance import analyze

    database = Database.connect(url)
    analyze(database)
    database.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(app: str, env: dict[str, str], extra_args: list[str] | None = None,
             health: str = "/health") -> Iterator[str]:
    """Run `app` under the project's gunicorn.conf.py; yields the base URL."""
    port = free_port()
    environment = {**os.environ, **env, "BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "warning"}
    command = [str(BIN / "gunicorn"), "-c", str(PROJECT / "gunicorn.conf.py"), *(extra_args or []), app]
    process = subprocess.Popen(command, cwd=PROJECT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(base + health, timeout=2).status_code < 500:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            errors = process.stderr.read(2000).decode() if process.stderr else ""
            raise RuntimeError("gunicorn did not start: " + errors)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> dict[str, float]:
    """Run wrk; returns requests/s and latency percentiles in milliseconds."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for this benchmark (Debian: apt-get install wrk)")
    command = ["wrk", "-t", str(min(connections, 4)), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    found = {"rps": rate}
    for label, key in (("50%", "p50"), ("99%", "p99")):
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", output)
        if match:
            value = float(match.group(1))
            found[key] = value / 1000 if match.group(2) == "us" else value * 1000 if match.group(2) == "s" else value
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    found["errors"] = float(non_2xx.group(1)) if non_2xx else 0.0
    return found


def synthea_bundles(archive: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of a Synthea set's bundles, hospital and practitioner files first."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
        found = [(m.name, tar.extractfile(m).read()) for m in members]  # type: ignore[union-attr]
    return sorted(found, key=lambda item: ("Information" not in item[0], item[0]))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
