"""Access tokens: JWTs the server signs for a client's granted scopes, and their verification."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt

from .clients import Client
from .jwts import TokenFormatError, Unverified, number, read, text_claim, verify
from .keys import SigningKeys, algorithm_of

LIFETIME = 300
TOKEN_TYPE = "at+jwt"  # RFC 9068: a client assertion or any other JWT can never pass for an access token
MAX_TOKEN_BYTES = 8192
TOKEN_PATH = "auth/token"


def token_url(fhir_base: str) -> str:
    """The token endpoint of a FHIR base URL (also the `iss` of its access tokens)."""
    return f"{fhir_base.rstrip('/')}/{TOKEN_PATH}"


@dataclass(frozen=True)
class Grant:
    """What a verified access token carries."""

    token_id: str
    client_id: str
    organization: str
    kind: str
    scope: str
    expires: int
    audience: str
    issuer: str


class AccessTokens:
    """Issues access tokens signed by the server's key and verifies them (signature, type, claims; the
    audience and issuer against the FHIR base they are presented to)."""

    def __init__(self, keys: SigningKeys, lifetime: int = LIFETIME, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.lifetime = lifetime
        self.clock = clock

    def issue(self, client: Client, scope: str, fhir_base: str, now: float | None = None) -> tuple[str, Grant]:
        """A new access token for `client` with the granted `scope`, for the FHIR API at `fhir_base`."""
        issued = int(self.clock() if now is None else now)
        grant = Grant(token_id=uuid.uuid4().hex, client_id=client.id, organization=client.organization,
                      kind=client.kind, scope=scope, expires=issued + self.lifetime, audience=fhir_base,
                      issuer=token_url(fhir_base))
        return self.sign(grant, issued), grant

    def sign(self, grant: Grant, issued: int) -> str:
        key = self.keys.current()
        claims = {"iss": grant.issuer, "sub": grant.client_id, "aud": grant.audience, "client_id": grant.client_id,
                  "iat": issued, "exp": grant.expires, "jti": grant.token_id, "scope": grant.scope,
                  "organization": grant.organization, "kind": grant.kind}
        alg = algorithm_of(key)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": TOKEN_TYPE}, claims, key, algorithms=[alg])

    def verify(self, text: str, fhir_base: str | None, *, expired_too: bool = False) -> Grant:
        """The grant of a token this server signed; TokenFormatError when it is not one, is expired (unless
        `expired_too`) or was issued for another FHIR base (when `fhir_base` is given)."""
        token = read(text, MAX_TOKEN_BYTES)
        if token.header.get("typ") != TOKEN_TYPE:
            raise TokenFormatError(f"the token is not an access token of this server (typ {TOKEN_TYPE})")
        key = self.keys.verification_key(token.header["kid"])
        if key is None:
            raise TokenFormatError("the token is signed by a key this server does not have")
        verify(token, key)
        grant = grant_of(token)
        if not expired_too and grant.expires <= self.clock():
            raise TokenFormatError("the token has expired")
        if fhir_base is not None and grant.audience != fhir_base:
            raise TokenFormatError(f"the token was issued for {grant.audience}, not {fhir_base}")
        if fhir_base is not None and grant.issuer != token_url(fhir_base):
            raise TokenFormatError(f"the token was issued by {grant.issuer}, not {token_url(fhir_base)}")
        return grant


def grant_of(token: Unverified) -> Grant:
    claims = token.claims
    expires = number(claims, "exp")
    if expires is None:
        raise TokenFormatError("the token has no exp")
    if claims.get("client_id", claims.get("sub")) != claims.get("sub"):
        raise TokenFormatError("the token's client_id and sub differ")
    return Grant(token_id=text_claim(claims, "jti"), client_id=text_claim(claims, "sub"),
                 organization=text_claim(claims, "organization", 1024), kind=text_claim(claims, "kind"),
                 scope=text_claim(claims, "scope", 8192), expires=int(expires),
                 audience=text_claim(claims, "aud", 2048), issuer=text_claim(claims, "iss", 2048))
