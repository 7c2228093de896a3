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
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings

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
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with a 2,000-byte body limit, mounted below /care, on its own SQLite file."""
    from server.store.migrate import upgrade

    folder: Path = tmp_path_factory.mktemp("small")
    url = f"sqlite:///{folder / 'small.db'}"
    upgrade(url)
    app = create_app(Settings.from_env({}, database_url=url, max_request_bytes=2000))

    def mounted(environ, start_response):  # a reverse proxy that mounts the app below /care
        environ["SCRIPT_NAME"] = "/care"
        environ["PATH_INFO"] = environ["PATH_INFO"].removeprefix("/care")
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, mounted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app.extensions["sharedcare"].services.database.dispose()


def test_base_url_follows_host_and_mount_point(small_server):
    created = requests.post(f"{small_server}/care/fhir/Patient", data=orjson.dumps(patient()),
                            headers={"Content-Type": FHIR_JSON, "Host": "ward.example.org:8443"}, timeout=30)
    assert created.status_code == 201, created.text
    assert created.headers["Location"].startswith("http://ward.example.org:8443/care/fhir/Patient/")
    search = requests.get(f"{small_server}/care/fhir/Patient", timeout=30).json()
    assert search["link"][0]["url"].startswith(f"{small_server}/care/fhir/Patient")


def test_body_over_the_limit_is_413_with_or_without_length(small_server):
    big = orjson.dumps({**patient(), "text": {"status": "generated", "div": "<div>" + "x" * 5000 + "</div>"}})
    for chunked in (False, True):
        status, _headers, body = raw_request(small_server, "POST", "/care/fhir/Patient", big,
                                            {"Content-Type": FHIR_JSON}, chunked=chunked)
        assert status == 413, (chunked, body[:200])
        outcome = orjson.loads(body)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "too-costly"
        assert "2000 bytes" in outcome["issue"][0]["diagnostics"]


def test_chunked_body_under_the_limit_is_read(small_server):
    status, _headers, body = raw_request(small_server, "POST", "/care/fhir/Patient", orjson.dumps(patient()),
                                        {"Content-Type": FHIR_JSON}, chunked=True)
    assert status == 201, body[:300]
    assert orjson.loads(body)["resourceType"] == "Patient"


def test_head_announces_the_length_without_a_body(live_server):
    created = requests.post(f"{live_server}/Patient", data=orjson.dumps(patient()),
                            headers={"Content-Type": FHIR_JSON}, timeout=30).json()
    path = urlsplit(live_server).path + f"/Patient/{created['id']}"
    get_status, get_headers, get_body = raw_request(live_server, "GET", path)
    status, headers, body = raw_request(live_server, "HEAD", path)
    assert status == get_status == 200 and body == b""
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    assert headers["ETag"] == get_headers["ETag"] == 'W/"1"'


def test_not_modified_has_no_body(live_server):
    created = requests.post(f"{live_server}/Patient", data=orjson.dumps(patient()),
                            headers={"Content-Type": FHIR_JSON}, timeout=30).json()
    answer = requests.get(f"{live_server}/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'}, timeout=30)
    assert answer.status_code == 304 and answer.content == b""
    assert answer.headers["ETag"] == 'W/"1"'


def test_options_lists_the_methods_and_other_methods_are_405(live_server):
    options = requests.options(f"{live_server}/Patient", timeout=30)
    assert options.status_code == 200
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= {m.strip() for m in options.headers["Allow"].split(",")}
    for method in ("TRACE", "PROPFIND"):
        answer = requests.request(method, f"{live_server}/Patient", timeout=30)
        assert_outcome(answer, 405, "not-supported", text=method)
        assert "GET" in answer.headers["Allow"]


def test_request_id_is_echoed(live_server):
    answer = requests.get(f"{live_server}/Patient/no-such-one", headers={"X-Request-ID": "abc-123"}, timeout=30)
    assert_outcome(answer, 404)
    assert answer.headers["X-Request-ID"] == "abc-123"


def test_paths_and_queries_that_are_not_utf8_are_answered(live_server):
    where = urlsplit(live_server)
    for target in (b"/Patient?name=%FF%FE&family=\xe9", b"/Patient/\xff\xfe", b"/Pat\xe9ient?x=1"):
        with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
            connection.sendall(b"GET " + where.path.encode() + target + b" HTTP/1.0\r\nHost: x\r\n\r\n")
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


def test_a_broken_chunked_body_is_400(small_server):
    where = urlsplit(small_server)
    with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
        connection.sendall(b"POST /care/fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        reply = b""
        while piece := connection.recv(65536):
            reply += piece
    head, _, body = reply.partition(b"\r\n\r\n")
    assert int(head.split(b" ")[1]) == 400, reply[:300]
    assert orjson.loads(body)["resourceType"] == "OperationOutcome"
