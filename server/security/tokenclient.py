"""The client side of SMART Backend Services: sign a client assertion, exchange it for an access token."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from .keys import algorithm_of
from .smart import CONFIGURATION_PATH, endpoint
from .tokens import ASSERTION_TYPE, GRANT_TYPE

ASSERTION_LIFETIME = 240
RENEW_BEFORE = 60  # seconds before its expiry a token is replaced


class TokenRequestError(RuntimeError):
    """The token endpoint refused (or could not be reached)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"token request refused ({status}): {body}")
        self.status = status
        self.body = body


def sign_assertion(client_id: str, key: RSAKey | ECKey, token_url: str, *, lifetime: int = ASSERTION_LIFETIME,
                   now: float | None = None, header: dict[str, Any] | None = None,
                   claims: dict[str, Any] | None = None) -> str:
    """A client assertion (RFC 7523) for `token_url`, signed with the client's private key (RS384 or ES384
    by the key's alg); `header` and `claims` add to or replace the standard members (None leaves one out)."""
    issued = int(time.time() if now is None else now)
    alg = algorithm_of(key)
    protected = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    payload = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": issued + lifetime, "iat": issued,
               "jti": uuid.uuid4().hex, **(claims or {})}
    return jwt.encode({k: v for k, v in protected.items() if v is not None},
                      {k: v for k, v in payload.items() if v is not None}, key, algorithms=[alg])


def token_form(client_id: str, key: RSAKey | ECKey, token_url: str, scope: str) -> dict[str, str]:
    """The form of a client_credentials token request."""
    return {"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sign_assertion(client_id, key, token_url), "scope": scope}


def token_endpoint(fhir_base: str, session: requests.Session | None = None, timeout: float = 30.0) -> str:
    """The token endpoint a server names in its .well-known/smart-configuration."""
    http = session or requests.Session()
    answer = http.get(endpoint(fhir_base, CONFIGURATION_PATH), timeout=timeout)
    answer.raise_for_status()
    return str(answer.json()["token_endpoint"])


def request_token(fhir_base: str, client_id: str, key: RSAKey | ECKey, scope: str,
                  session: requests.Session | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Discover the token endpoint of `fhir_base`, sign an assertion and ask for a token; the JSON answer
    (access_token, token_type, expires_in, scope). TokenRequestError when refused."""
    http = session or requests.Session()
    url = token_endpoint(fhir_base, http, timeout)
    answer = http.post(url, data=token_form(client_id, key, url, scope), timeout=timeout)
    try:
        body = answer.json()
    except ValueError:
        body = answer.text
    if answer.status_code != 200:
        raise TokenRequestError(answer.status_code, body)
    return body


class BackendServicesAuth(requests.auth.AuthBase):
    """requests authentication as a SMART Backend Services client: an access token from the server's token
    endpoint, replaced by a new one shortly before it expires (for sessions that outlive a token)."""

    def __init__(self, fhir_base: str, client_id: str, key: RSAKey | ECKey, scope: str) -> None:
        self.fhir_base = fhir_base.rstrip("/")
        self.client_id = client_id
        self.key = key
        self.scope = scope
        self.token: str | None = None
        self.expires = 0.0
        self.lock = threading.Lock()

    def current(self) -> str:
        with self.lock:
            if self.token is None or self.expires - time.time() < RENEW_BEFORE:
                answer = request_token(self.fhir_base, self.client_id, self.key, self.scope)
                self.token, self.expires = answer["access_token"], time.time() + int(answer["expires_in"])
            return self.token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        return request
