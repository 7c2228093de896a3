"""Helpers shared by tests: unique values, FHIR request headers and OperationOutcome checks."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import requests

FHIR_JSON = "application/fhir+json"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_outcome(response: Any, status: int, code: str | None = None, expression: str | None = None,
                   text: str | None = None) -> dict[str, Any]:
    """The response has this status and an OperationOutcome body (with the given issue code/expression)."""
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    assert response.status_code == status, (response.status_code, body)
    assert body["resourceType"] == "OperationOutcome", body
    issues = body["issue"]
    assert issues and all({"severity", "code", "diagnostics"} <= set(i) for i in issues), issues
    if code is not None:
        assert any(i["code"] == code for i in issues), issues
    if expression is not None:
        assert any(expression in i.get("expression", []) for i in issues), issues
    if text is not None:
        assert any(text in i["diagnostics"] for i in issues), issues
    return body


def patient(nhs_number: str | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number or unique("nhs")}],
        "name": [{"family": "Hardy", "given": ["Jean"]}],
        "gender": "female",
        "birthDate": "1934-03-14",
    }
    resource.update(extra)
    return resource


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    """Wait until `url` answers 200 (a server process coming up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def app_on_own_database(tmp_path_factory: Any, **settings: str) -> Iterator[Any]:
    """An authenticated app with its own settings on a database of its own, dropped afterwards."""
    from server.app import create_app
    from server.config import Settings
    from tests.auth import authenticate_app
    from tests.conftest import create_database

    url, drop = create_database(tmp_path_factory.mktemp("own"))
    application = create_app(Settings.from_env({}, database_url=url, **settings))
    authenticate_app(application)
    yield application
    application.extensions["sharedcare"].services.database.dispose()
    drop()  # type: ignore[operator]
