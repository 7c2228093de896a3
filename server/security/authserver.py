"""The authorization server of one process: client registry, signing keys, token endpoint, bearer checks, revocation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..store.db import Database
from .access_tokens import AccessTokens
from .assertions import AssertionVerifier
from .authenticator import Authenticator
from .clients import Client, ClientRegistry
from .context import Caller
from .events import IGNORED, REFUSED, REVOKE, REVOKED, AuthEvent
from .jwks import JwksFetcher
from .jwts import TokenFormatError
from .keys import SigningKeys
from .replay import ReplayGuard
from .revocation import Revocations
from .smart import smart_configuration
from .tokens import TokenEndpoint

ADMIN_KIND = "admin"


class AuthServer:
    """SMART Backend Services for one process. The HTTP layer calls `token`, `authenticate`, `revoke`,
    `configuration` and `jwks`; each answers with data or an AuthEvent (AuthFailure when raised)."""

    def __init__(self, database: Database, *, ca_bundle: str = "",
                 policy_folders: Iterable[Traversable | Path] | None = None, signing_alg: str = "ES384",
                 clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.registry = ClientRegistry(database, policy_folders)
        self.fetcher = JwksFetcher(ca_bundle, clock=clock)
        self.keys = SigningKeys(database, signing_alg)
        self.tokens = AccessTokens(self.keys, clock=clock)
        self.revocations = Revocations(database, clock=clock)
        self.verifier = AssertionVerifier(self.registry, self.fetcher, ReplayGuard(database, clock), clock)
        self.endpoint = TokenEndpoint(self.verifier, self.tokens)
        self.authenticator = Authenticator(self.tokens, self.revocations, clock=clock)

    def token(self, form: list[tuple[str, str]], fhir_base: str) -> AuthEvent:
        """A token request (the form of POST {base}/auth/token), answered as an AuthEvent with its body."""
        return self.endpoint.request(form, fhir_base)

    def authenticate(self, authorization: str | None, fhir_base: str, *, purpose: str | None = None,
                     break_glass: str | None = None, request_id: str | None = None) -> Caller:
        """The Caller of a bearer token; raises AuthFailure (a refused-bearer AuthEvent) otherwise."""
        return self.authenticator.authenticate(authorization, fhir_base, purpose=purpose, break_glass=break_glass,
                                               request_id=request_id)

    def revoke(self, caller: Caller, form: list[tuple[str, str]]) -> AuthEvent:
        """RFC 7009 revocation by an administrator (a caller of kind admin) of one access token of this
        server; a token that is not one (or has expired) is answered 200 all the same, revoking nothing."""
        who: dict[str, Any] = {"client_id": caller.subject, "organization": caller.organization,
                               "kind": caller.kind}
        if caller.kind != ADMIN_KIND:
            return refused_revocation("unauthorized_client", "Only administrators (clients of kind admin) may "
                                      "revoke tokens", 403, who)
        tokens = [value for name, value in form if name == "token"]
        if len(tokens) != 1 or not tokens[0]:
            return refused_revocation("invalid_request", "token is required, once", 400, who)
        try:
            grant = self.tokens.verify(tokens[0], None, expired_too=True)
        except TokenFormatError as exc:
            return AuthEvent(action=REVOKE, outcome=IGNORED, status=200, description=f"Nothing revoked: {exc}",
                             body={}, **who)
        self.revocations.revoke_token(grant.token_id, grant.expires)
        return AuthEvent(action=REVOKE, outcome=REVOKED, status=200, token_id=grant.token_id, body={},
                         description=f"Revoked token {grant.token_id} of {grant.client_id}", **who)

    def revoke_client(self, client_id: str) -> Client:
        """Revoke a client: it gets no new tokens, and its tokens stop working (here at once)."""
        client = self.registry.revoke(client_id)
        self.revocations.client_revoked(client_id)
        return client

    def configuration(self, fhir_base: str) -> dict[str, Any]:
        return smart_configuration(fhir_base)

    def jwks(self) -> dict[str, Any]:
        return self.keys.public_jwks()


def refused_revocation(code: str, description: str, status: int, who: dict[str, Any]) -> AuthEvent:
    return AuthEvent(action=REVOKE, outcome=REFUSED, status=status, error=code, description=description,
                     body={"error": code, "error_description": description}, **who)
