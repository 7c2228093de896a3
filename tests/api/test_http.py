"""The HTTP layer over real sockets: methods, body limits, headers, base URLs and the paths Flask keeps."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings

from ..auth import authenticate_app, session_for, token_for
from ..support import FHIR_JSON, assert_outcome, patient


def raw_request(base: str, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection, with full control of the framing."""
    where = urlsplit(base)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        if chunked:
            connection.putrequest(method, path)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            for start in range(0, len(body or b""), 4096):
                piece = (body or b"")[start:start + 4096]
                connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            connection.send(b"0\r\n\r\n")
        else:
            connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def small_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app with a 2,000-byte body limit on its own SQLite file."""
    from server.store.migrate import upgrade

    folder: Path = tmp_path_factory.mktemp("small")
    url = f"sqlite:///{folder / 'small.db'}"
    upgrade(url)
    app = create_app(Settings.from_env({}, database_url=url, max_request_bytes=2000))
    authenticate_app(app)
    yield app
    app.extensions["sharedcare"].services.database.dispose()


@pytest.fixture(scope="module")
def small_server(small_app: Flask) -> Iterator[str]:
    """The small app served over real HTTP, mounted below /care."""
    app = small_app

    def mounted(environ, start_response):  # a reverse proxy that mounts the app below /care
        environ["SCRIPT_NAME"] = "/care"
        environ["PATH_INFO"] = environ["PATH_INFO"].removeprefix("/care")
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, mounted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def small_session(small_app: Flask, small_server: str) -> Iterator[requests.Session]:
    with session_for(f"{small_server}/care/fhir", small_app.extensions["tests.client"]) as session:
        yield session


def small_bearer(small_app: Flask, small_server: str) -> dict[str, str]:
    token = token_for(f"{small_server}/care/fhir", small_app.extensions["tests.client"])
    return {"Authorization": f"Bearer {token}"}


def test_base_url_follows_host_and_mount_point(small_app, small_server, small_session):
    ward = "ward.example.org:8443"
    token = token_for(f"{small_server}/care/fhir", small_app.extensions["tests.client"], host=ward)
    created = requests.post(f"{small_server}/care/fhir/Patient", data=orjson.dumps(patient()), timeout=30,
                            headers={"Content-Type": FHIR_JSON, "Host": ward, "Authorization": f"Bearer {token}"})
    assert created.status_code == 201, created.text
    assert created.headers["Location"].startswith(f"http://{ward}/care/fhir/Patient/")
    search = small_session.get(f"{small_server}/care/fhir/Patient", timeout=30).json()
    assert search["link"][0]["url"].startswith(f"{small_server}/care/fhir/Patient")
    refused = small_session.get(f"{small_server}/care/fhir/Patient", headers={"Host": ward}, timeout=30)
    assert_outcome(refused, 401, "login")  # a token is for the base URL it was issued at


def test_body_over_the_limit_is_413_with_or_without_length(small_app, small_server):
    big = orjson.dumps({**patient(), "text": {"status": "generated", "div": "<div>" + "x" * 5000 + "</div>"}})
    for chunked in (False, True):
        status, _headers, body = raw_request(small_server, "POST", "/care/fhir/Patient", big,
                                            {"Content-Type": FHIR_JSON, **small_bearer(small_app, small_server)},
                                            chunked=chunked)
        assert status == 413, (chunked, body[:200])
        outcome = orjson.loads(body)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "too-costly"
        assert "2000 bytes" in outcome["issue"][0]["diagnostics"]


def test_chunked_body_under_the_limit_is_read(small_app, small_server):
    status, _headers, body = raw_request(small_server, "POST", "/care/fhir/Patient", orjson.dumps(patient()),
                                        {"Content-Type": FHIR_JSON, **small_bearer(small_app, small_server)},
                                        chunked=True)
    assert status == 201, body[:300]
    assert orjson.loads(body)["resourceType"] == "Patient"


def bearer(app, live_server) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(live_server, app.extensions['tests.client'])}"}


def test_head_announces_the_length_without_a_body(app, live_server, http_session):
    created = http_session.post(f"{live_server}/Patient", data=orjson.dumps(patient()),
                                headers={"Content-Type": FHIR_JSON}, timeout=30).json()
    path = urlsplit(live_server).path + f"/Patient/{created['id']}"
    get_status, get_headers, get_body = raw_request(live_server, "GET", path, headers=bearer(app, live_server))
    status, headers, body = raw_request(live_server, "HEAD", path, headers=bearer(app, live_server))
    assert status == get_status == 200 and body == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    assert headers["ETag"] == get_headers["ETag"] == 'W/"1"'


def test_not_modified_has_no_body(live_server, http_session):
    created = http_session.post(f"{live_server}/Patient", data=orjson.dumps(patient()),
                                headers={"Content-Type": FHIR_JSON}, timeout=30).json()
    answer = http_session.get(f"{live_server}/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'},
                              timeout=30)
    assert answer.status_code == 304 and answer.content == b""
    assert answer.headers["ETag"] == 'W/"1"'


def test_options_lists_the_methods_and_other_methods_are_405(live_server):
    options = requests.options(f"{live_server}/Patient", timeout=30)  # no token needed to ask what is allowed
    assert options.status_code == 200
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= {m.strip() for m in options.headers["Allow"].split(",")}
    for method in ("TRACE", "PROPFIND"):
        answer = requests.request(method, f"{live_server}/Patient", timeout=30)
        assert_outcome(answer, 405, "not-supported", text=method)
        assert "GET" in answer.headers["Allow"]


def test_request_id_is_echoed(live_server, http_session):
    answer = http_session.get(f"{live_server}/Patient/no-such-one", headers={"X-Request-ID": "abc-123"}, timeout=30)
    assert_outcome(answer, 404)
    assert answer.headers["X-Request-ID"] == "abc-123"
    made = http_session.get(f"{live_server}/Patient/no-such-one", timeout=30).headers["X-Request-ID"]
    again = http_session.get(f"{live_server}/Patient/no-such-one", timeout=30).headers["X-Request-ID"]
    assert len(made) == 32 and made != again  # the server gives every request an id when the client does not
    long = http_session.get(f"{live_server}/Patient/no-such-one", headers={"X-Request-ID": "x" * 500}, timeout=30)
    assert len(long.headers["X-Request-ID"]) == 32


def test_paths_and_queries_that_are_not_utf8_are_answered(app, live_server):
    where = urlsplit(live_server)
    authorization = bearer(app, live_server)["Authorization"].encode()
    for target in (b"/Patient?name=%FF%FE&family=\xe9", b"/Patient/\xff\xfe", b"/Pat\xe9ient?x=1"):
        with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
            connection.sendall(b"GET " + where.path.encode() + target + b" HTTP/1.0\r\nHost: " +
                               where.netloc.encode() + b"\r\nAuthorization: " + authorization + b"\r\n\r\n")
            reply = b""
            while piece := connection.recv(65536):
                reply += piece
        head, _, body = reply.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        assert status in (200, 400, 404), (target, reply[:300])
        assert orjson.loads(body)["resourceType"] in ("Bundle", "OperationOutcome")


def test_paths_outside_the_fhir_base_stay_with_flask(live_server):
    root = live_server.removesuffix("/fhir")
    assert requests.get(f"{root}/health", timeout=30).json()["status"] == "ok"
    assert_outcome(requests.get(f"{root}/nowhere", timeout=30), 404, "not-found")
    assert_outcome(requests.post(f"{root}/health", timeout=30), 405, "not-supported")
    assert_outcome(requests.get(f"{root}/fhirish/Patient", timeout=30), 404)


def test_a_broken_chunked_body_is_400(small_app, small_server):
    where = urlsplit(small_server)
    authorization = small_bearer(small_app, small_server)["Authorization"].encode()
    with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
        connection.sendall(b"POST /care/fhir/Patient HTTP/1.1\r\nHost: " + where.netloc.encode() +
                           b"\r\nAuthorization: " + authorization + b"\r\nContent-Type: application/fhir+json\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        reply = b""
        while piece := connection.recv(65536):
            reply += piece
    head, _, body = reply.partition(b"\r\n\r\n")
    assert int(head.split(b" ")[1]) == 400, reply[:300]
    assert orjson.loads(body)["resourceType"] == "OperationOutcome"
