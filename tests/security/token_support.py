"""Helpers for the token endpoint and bearer tests: forms, hand-made JWTs and checks of refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.security.authserver import AuthServer
from server.security.tokens import ASSERTION_TYPE

BASE = "http://localhost/fhir"
TOKEN_URL = f"{BASE}/auth/token"
TOKEN_PATH = "/fhir/auth/token"
REVOKE_PATH = "/fhir/auth/revoke"


def plain_client(app: Flask) -> FlaskClient:
    """A test client that sends no bearer token unless a request sets one."""
    return FlaskClient(app, app.response_class)


def auth_of(app: Flask) -> AuthServer:
    return app.extensions["sharedcare.auth"]


def form(assertion: str, scope: str | None = "system/Patient.rs", **extra: str) -> dict[str, str]:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, **extra}
    if scope is not None:
        data["scope"] = scope
    return data


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """A JWT put together by hand: unsigned (alg none) or HMAC-SHA signed with `secret`."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), digest).digest())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS (unverified)."""
    header, payload, _signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload))


def oauth_error(response: Any, status: int, error: str, text: str | None = None) -> dict[str, Any]:
    """The response is an RFC 6749 error answer with this status and code (and text in its description)."""
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert body["error"] == error, body
    assert isinstance(body.get("error_description"), str), body
    if text is not None:
        assert text in body["error_description"], body
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")
    return body


def bearer_refused(response: Any, text: str | None = None, error: str | None = "invalid_token") -> str:
    """A 401 with an RFC 6750 challenge and an OperationOutcome (code login); returns the challenge."""
    body = response.get_json()
    assert response.status_code == 401, (response.status_code, body)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="'), challenge
    if error is None:
        assert "error=" not in challenge, challenge
    else:
        assert f'error="{error}"' in challenge, challenge
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"][0]["code"] == "login" and body["issue"][0]["severity"] == "error", body
    if text is not None:
        assert text in body["issue"][0]["diagnostics"], body
    return challenge
