"""Bearer tokens to Callers: each token verified once and kept until it expires, checked against revocations."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .access_tokens import AccessTokens, Grant
from .context import Caller
from .events import BEARER, REFUSED, AuthEvent, AuthFailure
from .jwts import TokenFormatError
from .revocation import Revocations
from .scopes import ScopeSet

BEARER_TOKEN = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *$")
CACHE_SIZE = 10000
EMERGENCY = "ETREAT"


@dataclass(frozen=True)
class Verified:
    grant: Grant
    caller: Caller


class Authenticator:
    """Turns an `Authorization: Bearer` header into the request's Caller, or raises AuthFailure (401).

    A token's signature and claims are checked once; the result is kept per process, keyed by the token
    text, until the token's exp (at most `cache_size` tokens; the expired go first, then the oldest).
    Each use checks the expiry, the FHIR base it is presented to and the revocations (see Revocations:
    a revocation elsewhere is seen within a second, one in this process at once)."""

    def __init__(self, tokens: AccessTokens, revocations: Revocations, cache_size: int = CACHE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self.tokens = tokens
        self.revocations = revocations
        self.cache_size = cache_size
        self.clock = clock
        self.cache: dict[str, Verified] = {}
        self.lock = threading.Lock()

    def authenticate(self, authorization: str | None, fhir_base: str, *, purpose: str | None = None,
                     break_glass: str | None = None, request_id: str | None = None) -> Caller:
        """The caller of a request to the FHIR API at `fhir_base`; AuthFailure when there is no valid token."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise refused(None, "The request carries no bearer token (Authorization: Bearer ...)")
        match = BEARER_TOKEN.match(authorization)
        if match is None:
            raise refused("invalid_token", "The bearer token is malformed")
        text = match.group(1)
        verified = self.cache.get(text)
        if verified is None:
            verified = self.verify(text, fhir_base)
        grant = verified.grant
        if grant.expires <= self.clock():
            self.cache.pop(text, None)
            raise refused("invalid_token", "The access token has expired", grant)
        if grant.audience != fhir_base:
            raise refused("invalid_token", f"The access token was issued for {grant.audience}, not {fhir_base}",
                          grant)
        if self.revocations.revoked(grant.token_id, grant.client_id):
            raise refused("invalid_token", "The access token or its client has been revoked", grant)
        emergency = purpose is not None and purpose.rpartition("|")[2] == EMERGENCY
        return verified.caller.for_request(purpose, break_glass if emergency else None, request_id)

    def verify(self, text: str, fhir_base: str) -> Verified:
        try:
            grant = self.tokens.verify(text, fhir_base)
        except TokenFormatError as exc:
            raise refused("invalid_token", f"The access token is not valid: {exc}") from exc
        caller = Caller(subject=grant.client_id, scopes=ScopeSet.of(grant.scope), organization=grant.organization,
                        kind=grant.kind, token_id=grant.token_id)
        verified = Verified(grant, caller)
        self.keep(text, verified)
        return verified

    def keep(self, text: str, verified: Verified) -> None:
        with self.lock:
            if len(self.cache) >= self.cache_size:
                now = self.clock()
                for key in [k for k, v in self.cache.items() if v.grant.expires <= now]:
                    del self.cache[key]
                while len(self.cache) >= self.cache_size:
                    del self.cache[next(iter(self.cache))]
            self.cache[text] = verified


def refused(error: str | None, description: str, grant: Grant | None = None) -> AuthFailure:
    """A refused bearer (RFC 6750: `error` None when the request carried no token at all)."""
    return AuthFailure(AuthEvent(
        action=BEARER, outcome=REFUSED, status=401, error=error, description=description,
        client_id=grant.client_id if grant else None, organization=grant.organization if grant else None,
        kind=grant.kind if grant else None, token_id=grant.token_id if grant else None))
