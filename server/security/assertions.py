"""Client assertions (RFC 7523 private_key_jwt, SMART Backend Services): who signed, with which key, for us, once."""

from __future__ import annotations

import time
from collections.abc import Callable

from .clients import CLIENT_ID, Client, ClientRegistry
from .events import REFUSED, TOKEN, AuthEvent, AuthFailure
from .jwks import KEY_TYPE, JwksError, JwksFetcher, key_for
from .jwts import TokenFormatError, number, read, text_claim, verify
from .replay import ReplayGuard

MAX_ASSERTION_BYTES = 8192
MAX_LIFETIME = 300  # exp at most five minutes ahead
LEEWAY = 60  # seconds of clock difference allowed for iat, nbf and the five minutes of exp


class AssertionVerifier:
    """Checks a client assertion, in this order: size, form and algorithm (RS384 or ES384 only), the client
    (iss = sub = a registered client id), the `jku` header (only the registered jwks_uri, and never
    fetched from the header), the key (by kid and key type, from the client's registered keys), the
    signature, the times (exp required and at most five minutes ahead; iat and nbf not in the future), the
    audience (the token URL) and last the jti (never accepted twice). Every refusal is `invalid_client`."""

    def __init__(self, registry: ClientRegistry, fetcher: JwksFetcher, replay: ReplayGuard,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.fetcher = fetcher
        self.replay = replay
        self.clock = clock

    def verify(self, assertion: str, token_url: str) -> Client:
        """The registered client that signed `assertion` for `token_url`; AuthFailure otherwise."""
        claimed: str | None = None
        client: Client | None = None
        try:
            token = read(assertion, MAX_ASSERTION_BYTES, "the client assertion")
            iss, sub = token.claims.get("iss"), token.claims.get("sub")
            claimed = iss if isinstance(iss, str) else None
            if not isinstance(iss, str) or iss != sub:
                raise TokenFormatError("iss and sub must both be the client id")
            if not CLIENT_ID.fullmatch(iss):
                raise TokenFormatError(f"no client {iss!r} is registered")
            client = self.registry.get(iss)
            if client is None:
                raise TokenFormatError(f"no client {iss!r} is registered")
            jku = token.header.get("jku")
            if jku is not None and jku != client.jwks_uri:
                raise TokenFormatError("the jku header names a key set other than the client's registered "
                                       "jwks_uri (it was not fetched)")
            kid, alg = token.header["kid"], token.header["alg"]
            try:
                keys = self.fetcher.keys(client.jwks_uri, kid) if client.jwks_uri else client.keys()
            except JwksError as exc:
                raise TokenFormatError(f"the client's keys cannot be used: {exc}") from exc
            key = key_for(keys, kid, alg)
            if key is None:
                raise TokenFormatError(f"the client has no {KEY_TYPE[alg]} key with kid {kid!r} for {alg}")
            verify(token, key)
            expires = self.check_times(token.claims)
            audience = token.claims.get("aud")
            if audience != token_url and not (isinstance(audience, list) and token_url in audience):
                raise TokenFormatError(f"aud must be the token URL {token_url}")
            jti = text_claim(token.claims, "jti")
            if not self.replay.first_use(client.id, jti, expires):
                raise TokenFormatError("this assertion's jti has been used before")
        except TokenFormatError as exc:
            raise AuthFailure(AuthEvent(
                action=TOKEN, outcome=REFUSED, status=401, client_id=client.id if client else claimed,
                organization=client.organization if client else None, kind=client.kind if client else None,
                error="invalid_client", description=f"Client authentication failed: {exc}")) from exc
        return client

    def check_times(self, claims: dict[str, object]) -> int:
        """The assertion's exp, checked against the clock; TokenFormatError when out of bounds."""
        now = self.clock()
        expires = number(claims, "exp")  # type: ignore[arg-type]
        if expires is None:
            raise TokenFormatError("exp is required")
        if expires <= now:
            raise TokenFormatError("the assertion has expired")
        if expires > now + MAX_LIFETIME + LEEWAY:
            raise TokenFormatError(f"exp may be at most {MAX_LIFETIME} seconds ahead")
        for name in ("iat", "nbf"):
            value = number(claims, name)  # type: ignore[arg-type]
            if value is not None and value > now + LEEWAY:
                raise TokenFormatError(f"{name} is in the future")
        return int(expires) + 1
