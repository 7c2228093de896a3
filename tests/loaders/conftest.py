"""Fixtures for the loader tests: apps on their own databases, loads in-process and over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from sqlalchemy import text
from werkzeug.serving import make_server

from loaders.load import Loader, LoadOptions
from loaders.report import LoadReport
from loaders.sinks import HttpSink, InProcessSink
from mappings import Mappings
from server.api.model import FhirRequest
from server.security.context import Caller
from server.security.tokenclient import BackendServicesAuth
from tests.auth import ClientKey
from tests.conftest import app_factory

SOURCES = ("gp", "swift", "hospital")


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    return Mappings.load()


@pytest.fixture(scope="module")
def new_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Flask]]:
    """A factory of apps, each on its own empty database (dropped when the module ends)."""
    with app_factory(tmp_path_factory, "loaderdb") as make:
        yield make


def load(app: Flask, source: str, path: Path, mappings: Mappings | None = None, **options: Any) -> LoadReport:
    """Load in-process (rejects go to a temporary folder unless given)."""
    options.setdefault("progress", False)
    options.setdefault("rejects", Path(app.instance_path).parent / "rejects-unused")
    sink = InProcessSink.from_app(app, source)
    return Loader(sink, LoadOptions(**options), mappings=mappings).load(source, path)


def load_http(url: str, source: str, path: Path, mappings: Mappings | None = None, *,
              client: ClientKey, **options: Any) -> LoadReport:
    """Load over HTTP as `client`, its tokens got and renewed from the server's token endpoint (as
    `sharedcare load --server URL --client ID --key FILE`)."""
    options.setdefault("progress", False)
    sink = HttpSink(url, auth=BackendServicesAuth(url, client.client_id, client.key, client.scope))
    try:
        return Loader(sink, LoadOptions(**options), mappings=mappings).load(source, path)
    finally:
        sink.close()


def load_all(app: Flask, folder: Path, rejects: Path, mappings: Mappings | None = None) -> list[LoadReport]:
    return [load(app, source, folder / source, mappings, rejects=rejects) for source in SOURCES]


def api_get(app: Flask, path: str, **params: str) -> dict[str, Any]:
    """A GET through the FHIR API in-process; the parsed body."""
    api = app.extensions["sharedcare"]
    response = api.handle(FhirRequest(method="GET", path=path, params=list(params.items())), Caller.system("test"))
    assert response.status == 200, response.body
    return orjson.loads(response.body)


def search(app: Flask, resource_type: str, **params: str) -> list[dict[str, Any]]:
    """Every match of a search (one page of up to 1000)."""
    params.setdefault("_count", "1000")
    bundle = api_get(app, resource_type, **params)
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]


def versions(app: Flask) -> int:
    """How many versions the database holds (every write that changed something adds one)."""
    engine = app.extensions["sharedcare"].services.engine
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM resource_versions")).scalar_one())


def history(app: Flask, resource_type: str, resource_id: str) -> list[dict[str, Any]]:
    """Versions of one resource, oldest first."""
    bundle = api_get(app, f"{resource_type}/{resource_id}/_history")
    return list(reversed([e["resource"] for e in bundle.get("entry", []) if "resource" in e]))


@pytest.fixture(scope="module")
def http_app(new_app: Callable[[], Flask]) -> Iterator[tuple[Flask, str]]:
    """An app on its own database served over real HTTP; yields (app, FHIR base URL)."""
    app = new_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/fhir"
    server.shutdown()
