"""The production front (gunicorn with the project's configuration): stalled clients hold no thread, and its
limits answer with OperationOutcomes."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest
import requests

from tests.auth import session_for, token_for
from tests.resilience.servers import RunningServer, gunicorn_server
from tests.support import patient

STALLED = 50
WATCH_SECONDS = 6.0
ANSWER_WITHIN = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """gunicorn exactly as configured for production (its 10 s head and body timeouts outlast the watch)."""
    with gunicorn_server(tmp_path_factory.mktemp("front")) as running:
        yield running


def raw_exchange(server: RunningServer, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes and read the whole answer (the server closes after it): status, headers, body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as connection:
        connection.sendall(request)
        return read_answer(connection)


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    received = b""
    while True:
        piece = connection.recv(65536)
        if not piece:
            break
        received += piece
        head, found, body = received.partition(b"\r\n\r\n")
        if found:
            headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
            if len(body) >= int(headers.get("Content-Length", "-1")) >= 0:
                break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def assert_outcome_bytes(status: int, headers: dict[str, str], body: bytes, expected: int, text: str = "") -> None:
    assert status == expected, (status, body[:300])
    assert headers["content-type"].startswith("application/fhir+json"), headers
    outcome = orjson.loads(body)
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert text in outcome["issue"][0]["diagnostics"], outcome


def test_fifty_stalled_clients_starve_neither_health_nor_reads(server: RunningServer) -> None:
    with session_for(server.base, server.client) as http:
        stored = http.post(f"{server.base}/Patient", json=patient(), timeout=30).json()
        assert http.get(f"{server.base}/Patient/{stored['id']}", timeout=30).status_code == 200
        body = orjson.dumps(patient())
        stalled: list[socket.socket] = []
        try:
            for index in range(STALLED):
                connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                if index % 5 == 4:  # a fifth send half a head
                    connection.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n")
                else:  # the rest a head and half a body
                    connection.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                       b"application/fhir+json\r\nContent-Length: " + str(len(body)).encode()
                                       + b"\r\n\r\n" + body[:len(body) // 2])
                stalled.append(connection)
            slowest = 0.0
            deadline = time.monotonic() + WATCH_SECONDS
            while time.monotonic() < deadline:
                for url, session in ((f"{server.root}/health", requests),
                                     (f"{server.base}/Patient/{stored['id']}", http)):
                    started = time.monotonic()
                    answer = session.get(url, timeout=ANSWER_WITHIN)
                    slowest = max(slowest, time.monotonic() - started)
                    assert answer.status_code == 200, answer.text
                time.sleep(0.1)
            assert slowest < ANSWER_WITHIN, slowest
            for connection in stalled:  # each is answered 408 once it has been silent for 10 s
                assert_outcome_bytes(*read_answer(connection), 408, "Request Timeout")
        finally:
            for connection in stalled:
                connection.close()
    assert server.alive()


def test_a_url_too_long_names_post_search(server: RunningServer) -> None:
    for length in (8100, 9000):  # past the application's limit, then past gunicorn's own
        query = "name=" + "a" * length
        answer = raw_exchange(server, f"GET /fhir/Patient?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert_outcome_bytes(*answer, 414, "_search")
    assert requests.get(f"{server.root}/health", timeout=10).status_code == 200


@pytest.mark.parametrize(("headers", "body", "status"), [
    ("X-Long: " + "a" * 9000 + "\r\n", "", 431),
    ("".join(f"X-Many-{n}: a\r\n" for n in range(120)), "", 431),
    ("Content-Length: 100000000\r\n", "", 413),
    ("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n", 400),
])
def test_the_fronts_limits_answer_with_operation_outcomes(server: RunningServer, headers: str, body: str,
                                                          status: int) -> None:
    head = f"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    token = f"Authorization: Bearer {token_for(server.base, server.client)}\r\n"
    answer = raw_exchange(server, f"{head}{token}{headers}\r\n{body}".encode())
    assert_outcome_bytes(*answer, status)
    assert requests.get(f"{server.root}/health", timeout=10).status_code == 200


def test_a_body_sent_after_100_continue_is_served(server: RunningServer) -> None:
    token = f"Bearer {token_for(server.base, server.client)}"
    body = orjson.dumps(patient())
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(f"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
                           + b"Expect: 100-continue\r\nContent-Type: "
                           b"application/fhir+json\r\nAuthorization: " + token.encode() + b"\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
        assert connection.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(body)
        status, _headers, stored = read_answer(connection)
    assert status == 201, stored
