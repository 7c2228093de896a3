"""Benchmark plumbing: scratch PostgreSQL databases, gunicorn processes, wrk runs, Synthea bundles and the
SMART Backend Services clients every FHIR request is made as (registered with fresh keys, tokens from the
token endpoint over HTTP)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
RENEW_BEFORE = 60  # seconds before its expiry a token is replaced (access tokens last 300 s)


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
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    # its log goes to a file, never a pipe nobody reads: a full pipe would stall the server mid-run
    process = subprocess.Popen(command, cwd=PROJECT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        last = "no answer"
        while time.time() < deadline:
            try:
                answer = requests.get(base + health, timeout=2)
                if answer.status_code < 500:
                    break
                last = f"{health} answered {answer.status_code}: {answer.text[:300]}"
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"gunicorn did not start ({last}): " + Path(log.name).read_text()[-20000:])
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        errors = [line for line in Path(log.name).read_text(errors="replace").splitlines() if "[ERROR]" in line]
        if errors:
            print(f"  gunicorn logged {len(errors)} errors (log kept at {log.name}); the first: {errors[0][:300]}")
        else:
            os.unlink(log.name)


def wrk(url: str, connections: int, seconds: int, script: Path | None = None,
        headers: dict[str, str] | None = None, script_args: list[str] | None = None,
        threads: int | None = None) -> dict[str, float]:
    """Run wrk; returns requests/s, latency percentiles in milliseconds and the count of non-2xx answers.
    `headers` go on every request (also those a script's `wrk.format` builds without headers of its own);
    `script_args` are the script's `init(args)`."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for this benchmark (Debian: apt-get install wrk)")
    command = ["wrk", "-t", str(threads or min(connections, 4)), "-c", str(connections), "-d", f"{seconds}s",
               "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    found = {"rps": rate}
    for label, key in (("50%", "p50"), ("99%", "p99")):
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", output)
        if match:
            value = float(match.group(1))
            found[key] = value / 1000 if match.group(2) == "us" else value * 1000 if match.group(2) == "s" else value
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    found["errors"] = float(non_2xx.group(1)) if non_2xx else 0.0
    total = re.search(r"(\d+) requests in", output)
    found["requests"] = float(total.group(1)) if total else 0.0
    return found


def synthea_bundles(archive: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of a Synthea set's bundles, hospital and practitioner files first."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
        found = [(m.name, tar.extractfile(m).read()) for m in members]  # type: ignore[union-attr]
    return sorted(found, key=lambda item: ("Information" not in item[0], item[0]))


def server_version() -> str:
    """The commit the server code is at (and whether server/ has changes not committed), for the record."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "server", "profiles"], cwd=PROJECT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes to server/" if dirty else "")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------ SMART Backend Services clients

@dataclass
class BenchClient:
    """A client registered on one database with a freshly generated private key."""

    client_id: str
    key: Any  # joserfc RSAKey or ECKey (private)
    kind: str
    organization: str
    scope: str
    alg: str


def register_client(database_url: str, kind: str, organization: str, scope: str, alg: str = "ES384",
                    client_id: str | None = None) -> BenchClient:
    """Register a client of `kind` for `organization` (an ODS code or system|value) holding `scope` on the
    database, in-process through the server's own registry, with a new key (its public JWKS by value)."""
    from server.security.clients import ClientRegistry
    from server.security.keys import generate_private_key
    from server.store.db import Database

    client_id = client_id or f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    key = generate_private_key(alg)
    database = Database.connect(database_url, pool_size=1)
    try:
        registered = ClientRegistry(database).add(client_id, organization=organization, kind=kind, scope=scope,
                                                  jwks={"keys": [key.as_dict(private=False)]})
    finally:
        database.dispose()
    return BenchClient(client_id, key, registered.kind, registered.organization, registered.scope, alg)


@dataclass
class Tokens:
    """Access tokens of one client at one server (`base` is the server's root URL, the FHIR API at /fhir),
    got as a client gets them: the token endpoint from .well-known/smart-configuration, a client assertion
    signed for it with its own jti, the form POSTed. `current()` reuses a token until a minute before it
    expires; `fresh()` always asks for a new one (taken right before each wrk round)."""

    base: str
    client: BenchClient
    scope: str | None = None
    token: str | None = field(default=None, repr=False)
    expires: float = 0.0
    requested: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def fhir_base(self) -> str:
        return self.base.rstrip("/") + "/fhir"

    def fresh(self) -> str:
        with self.lock:
            return self.request()

    def current(self) -> str:
        if self.token is None or self.expires - time.time() < RENEW_BEFORE:
            with self.lock:
                if self.token is None or self.expires - time.time() < RENEW_BEFORE:
                    return self.request()
        return self.token

    def request(self) -> str:
        from server.security.tokenclient import request_token

        answer = request_token(self.fhir_base, self.client.client_id, self.client.key,
                               self.scope or self.client.scope)
        self.token, self.expires = answer["access_token"], time.time() + int(answer["expires_in"])
        self.requested += 1
        return self.token

    def header(self, fresh: bool = False) -> dict[str, str]:
        """The Authorization header (for wrk: `fresh=True` before each round)."""
        return {"Authorization": f"Bearer {self.fresh() if fresh else self.current()}"}


class Bearer(requests.auth.AuthBase):
    """requests authentication with a client's current token (renewed before it expires)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.current()}"
        return request


def session_as(tokens: Tokens) -> requests.Session:
    """A requests.Session whose every request carries the client's bearer token."""
    session = requests.Session()
    session.auth = Bearer(tokens)
    return session


def client_tokens(database_url: str, base: str, kind: str, organization: str, scope: str,
                  alg: str = "ES384") -> Tokens:
    """Register a client on the database and return its token source at the server `base`."""
    return Tokens(base, register_client(database_url, kind, organization, scope, alg))


INTEGRATION = ("integration", f"{ODS}|BENCHHOST", "system/*.cruds")
"""The region's own data service: loads and reads the whole record (kind, organisation, scope)."""


def practice_reference(code: str) -> dict[str, str]:
    """A conditional reference to the practice Organization with this ODS code."""
    return {"reference": f"Organization?identifier={ODS}|{code}"}


def practice_organizations(codes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A transaction creating (unless they exist) one GP practice Organization per ODS code."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Organization", "active": True, "name": f"Practice {code}",
                     "identifier": [{"system": ODS, "value": code}],
                     "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                           "code": "prov", "display": "Healthcare Provider"}]}]},
        "request": {"method": "POST", "url": "Organization", "ifNoneExist": f"identifier={ODS}|{code}"}}
        for code in codes]}


def registered_at(bundle: dict[str, Any], code: str) -> dict[str, Any]:
    """The bundle with its Patients registered at the practice `code` (generalPractitioner)."""
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["generalPractitioner"] = [practice_reference(code)]
    return bundle
