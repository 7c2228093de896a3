"""Test clients of the server's SMART Backend Services: registered with fresh keys, tokens got from the token
endpoint as any client gets them (discovery, a signed assertion, the form POST), renewed before they expire."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey, RSAKey
from werkzeug.datastructures import Headers

from server.security.authserver import AuthServer
from server.security.keys import generate_private_key
from server.security.smart import CONFIGURATION_PATH
from server.security.tokenclient import TokenRequestError, token_form

DEFAULT_KIND = "integration"
DEFAULT_ORGANIZATION = "https://fhir.nhs.uk/Id/ods-organization-code|TESTHOST"
DEFAULT_SCOPE = "system/*.cruds"
RENEW_BEFORE = 60  # seconds before its exp a token is replaced


@dataclass
class ClientKey:
    """A registered client and its private key; remembers its tokens per server (and Host) and scope."""

    client_id: str
    key: RSAKey | ECKey
    kind: str
    organization: str
    scope: str
    tokens: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}


def auth_of(app: Flask) -> AuthServer:
    return app.extensions["sharedcare.auth"]


def register_client(app: Flask, client_id: str | None = None, *, kind: str = DEFAULT_KIND,
                    organization: str = DEFAULT_ORGANIZATION, scope: str = DEFAULT_SCOPE, alg: str = "ES384",
                    jwks_uri: str | None = None, key: RSAKey | ECKey | None = None) -> ClientKey:
    """Register a client on the app's database with a fresh key (public JWKS by value unless `jwks_uri`)."""
    client_id = client_id or f"test-{kind}-{uuid.uuid4().hex[:8]}"
    key = key or generate_private_key(alg)
    client = ClientKey(client_id, key, kind, organization, scope)
    registered = auth_of(app).registry.add(client_id, organization=organization, kind=kind, scope=scope,
                                           jwks=None if jwks_uri else client.public_jwks(), jwks_uri=jwks_uri)
    client.organization, client.scope = registered.organization, registered.scope
    return client


def token_answer(app_or_base_url: Flask | str, client: ClientKey, scope: str | None = None,
                 host: str | None = None) -> tuple[int, dict[str, Any]]:
    """Ask the token endpoint for a token, as a client does: the endpoint from .well-known/smart-configuration,
    an assertion signed for it, the form POSTed to it. (status, JSON answer)."""
    scope = scope or client.scope
    if isinstance(app_or_base_url, Flask):
        app = app_or_base_url
        fhir_path = app.extensions["sharedcare.settings"].fhir_path.rstrip("/")
        plain = FlaskClient(app, app.response_class, use_cookies=False)  # the unauthenticated kind
        endpoint = plain.get(f"{fhir_path}/{CONFIGURATION_PATH}").get_json()["token_endpoint"]
        parts = urlsplit(endpoint)
        answer = plain.post(parts.path, data=token_form(client.client_id, client.key, endpoint, scope),
                            base_url=f"{parts.scheme}://{parts.netloc}")
        return answer.status_code, answer.get_json()
    base = app_or_base_url.rstrip("/")
    headers = {"Host": host} if host else {}
    with requests.Session() as http:
        endpoint = http.get(f"{base}/{CONFIGURATION_PATH}", headers=headers, timeout=30).json()["token_endpoint"]
        where = urlsplit(base)
        post_to = urlunsplit((where.scheme, where.netloc, urlsplit(endpoint).path, "", ""))
        answer = http.post(post_to, data=token_form(client.client_id, client.key, endpoint, scope),
                           headers=headers, timeout=30)
        return answer.status_code, answer.json()


def token_for(app_or_base_url: Flask | str, client: ClientKey, scope: str | None = None,
              host: str | None = None) -> str:
    """An access token for the client at an app (through its test client) or a base URL (over HTTP, with
    `host` as the Host header when given), reused until a minute before it expires."""
    where = f"app-{id(app_or_base_url)}" if isinstance(app_or_base_url, Flask) else f"{app_or_base_url}|{host}"
    wanted = (where, scope or client.scope)
    with client.lock:
        found = client.tokens.get(wanted)
        if found is not None and found[1] - time.time() > RENEW_BEFORE:
            return found[0]
        status, body = token_answer(app_or_base_url, client, scope, host)
        if status != 200:
            raise TokenRequestError(status, body)
        client.tokens[wanted] = (body["access_token"], time.time() + int(body["expires_in"]))
        return body["access_token"]


class AuthenticatedClient(FlaskClient):
    """A Flask test client sending a bearer token of its client (the app's test client by default) unless
    the request sets Authorization itself."""

    def __init__(self, *args: Any, auth_client: ClientKey | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth_client = auth_client or self.application.extensions.get("tests.client")

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if self.auth_client is not None and not (args and not isinstance(args[0], str)):
            headers = Headers(kwargs.get("headers") or {})
            if "Authorization" not in headers:
                headers["Authorization"] = f"Bearer {token_for(self.application, self.auth_client)}"
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


def authenticate_app(app: Flask, **registration: Any) -> ClientKey:
    """Register the app's test client (kind integration, system/*.cruds unless told), make
    `app.test_client()` send its bearer token, and get the first token now (so later row counts are stable)."""
    client = register_client(app, **registration)
    app.extensions["tests.client"] = client
    app.test_client_class = AuthenticatedClient
    token_for(app, client)
    return client


def client_for(app: Flask, client: ClientKey) -> FlaskClient:
    """A test client of the app sending `client`'s bearer token."""
    return AuthenticatedClient(app, app.response_class, use_cookies=True, auth_client=client)


class BearerAuth(requests.auth.AuthBase):
    """requests authentication with a client's token for one server (renewed before it expires); a request
    that sets Authorization itself keeps it."""

    def __init__(self, base_url: str, client: ClientKey, host: str | None = None) -> None:
        self.base_url = base_url
        self.client = client
        self.host = host

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {token_for(self.base_url, self.client, host=self.host)}"
        return request


def session_for(base_url: str, client: ClientKey, host: str | None = None) -> requests.Session:
    """A requests.Session authenticated as `client` at the FHIR base URL."""
    session = requests.Session()
    session.auth = BearerAuth(base_url, client, host)
    return session
