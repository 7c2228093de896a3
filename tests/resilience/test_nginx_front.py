"""The buffering proxy of `docker-compose.yml` (`deploy/nginx.conf`, run by a real nginx in front of gunicorn):
stalled clients never reach the server, and the proxy's own limits answer with OperationOutcomes.

Needs the `nginx` program (Debian: nginx-light); `.ci/run` installs it when it can."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import requests

from tests.auth import token_for
from tests.resilience.servers import RunningServer, gunicorn_server
from tests.resilience.test_front import assert_outcome_bytes, read_answer
from tests.support import free_port, wait_for

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
STALLED = 30

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install "
                                                                       "nginx-light)")


@dataclass
class Proxied:
    """nginx on `port` in front of `server`."""

    server: RunningServer
    port: int

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exchange(self, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as connection:
            connection.sendall(request)
            return read_answer(connection)


def nginx_config(folder: Path, listen: int, upstream: int) -> Path:
    """The deployment's server block, pointed at a local gunicorn, inside a minimal main configuration."""
    site = CONFIG.read_text().replace("server server:8080;", f"server 127.0.0.1:{upstream};")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    assert f"127.0.0.1:{upstream}" in site and f"127.0.0.1:{listen}" in site
    (folder / "site.conf").write_text(site)
    main = folder / "nginx.conf"
    main.write_text("\n".join((
        "user root;  # ignored unless run as root: then workers may use the test's private folders",
        "worker_processes 1;", f"pid {folder}/nginx.pid;", f"error_log {folder}/error.log;", "daemon off;",
        "events { worker_connections 512; }",
        "http {", "  access_log off;", f"  client_body_temp_path {folder}/body;", f"  proxy_temp_path {folder}/proxy;",
        f"  include {folder}/site.conf;", "}", "")))
    return main


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    with gunicorn_server(tmp_path_factory.mktemp("upstream")) as server:
        folder = tmp_path_factory.mktemp("nginx")
        port = free_port()
        main = nginx_config(folder, port, server.port)
        process = subprocess.Popen(["nginx", "-c", str(main), "-p", str(folder)], stderr=subprocess.PIPE)
        try:
            wait_for(f"http://127.0.0.1:{port}/health")
            yield Proxied(server, port)
        finally:
            process.terminate()
            process.wait(20)


def test_requests_pass_through_with_their_answers(proxied: Proxied) -> None:
    token = token_for(f"{proxied.root}/fhir", proxied.server.client)  # the token endpoint through nginx too
    answer = requests.get(f"{proxied.root}/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {token}"},
                          timeout=10)
    assert answer.status_code == 200 and answer.json()["resourceType"] == "Bundle"
    refused = requests.get(f"{proxied.root}/fhir/Patient", timeout=10)  # the server's own 401 passes unchanged
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"
    assert "www-authenticate" in {name.lower() for name in refused.headers}


def test_a_url_too_long_to_parse_names_post_search(proxied: Proxied) -> None:
    status, headers, body = proxied.exchange(f"GET /fhir/Patient?name={'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n"
                                             .encode())
    assert_outcome_bytes(status, headers, body, 414, "POST [base]/[type]/_search")


def test_a_header_too_large_is_an_outcome(proxied: Proxied) -> None:
    status, headers, body = proxied.exchange(f"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 9000}\r\n\r\n"
                                             .encode())
    assert_outcome_bytes(status, headers, body, 400, "header")


def test_a_body_too_large_is_refused_before_it_is_read(proxied: Proxied) -> None:
    status, headers, body = proxied.exchange(b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                             b"application/fhir+json\r\nContent-Length: 100000000\r\n\r\n")
    assert_outcome_bytes(status, headers, body, 413, "larger than")


def test_stalled_clients_never_reach_the_server(proxied: Proxied) -> None:
    """Clients that send half a body and wait are held by nginx: the server's health and reads answer at once
    throughout, and nginx drops the stalled clients after its body timeout without passing them on."""
    stalled = []
    for _ in range(STALLED):
        connection = socket.create_connection(("127.0.0.1", proxied.port), timeout=30)
        connection.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                           b"Content-Length: 100\r\n\r\n{\"resourceType\"")
        stalled.append(connection)
    try:
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(f"{proxied.root}/health", timeout=5).status_code == 200
            assert requests.get(f"{proxied.server.root}/health", timeout=5).status_code == 200
            assert time.monotonic() - started < 2.0
            time.sleep(0.5)
        connection = stalled[0]
        connection.settimeout(20)
        started = time.monotonic()
        assert connection.recv(65536) == b""  # closed by nginx after client_body_timeout, never answered
        assert time.monotonic() - started < 15
    finally:
        for connection in stalled:
            connection.close()


def test_the_server_down_is_an_outcome(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("nginx-alone")
    port = free_port()
    main = nginx_config(folder, port, free_port())  # nothing listens upstream
    process = subprocess.Popen(["nginx", "-c", str(main), "-p", str(folder)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        assert answer.status_code == 502
        assert answer.headers["Content-Type"].startswith("application/fhir+json")
        assert orjson.loads(answer.content)["issue"][0]["code"] == "transient"
    finally:
        process.terminate()
        process.wait(20)
