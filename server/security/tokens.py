"""The token endpoint: client_credentials grants to clients authenticated by a signed JWT (private_key_jwt)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .access_tokens import AccessTokens, token_url
from .assertions import AssertionVerifier
from .clients import Client
from .events import ISSUED, REFUSED, TOKEN, AuthEvent, AuthFailure
from .scopes import parse_scopes

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SINGLE = ("grant_type", "client_assertion_type", "client_assertion", "scope", "client_id")


class TokenEndpoint:
    """Answers a token request (its form parameters) with an AuthEvent: the access token, or an RFC 6749
    section 5.2 error with its description: invalid_request, invalid_client (401: the assertion or the
    authentication method), unauthorized_client (a revoked client), unsupported_grant_type, invalid_scope.
    (invalid_grant has no occasion: a client_credentials request carries no grant to be invalid.)"""

    def __init__(self, verifier: AssertionVerifier, tokens: AccessTokens) -> None:
        self.verifier = verifier
        self.tokens = tokens

    def request(self, form: list[tuple[str, str]], fhir_base: str) -> AuthEvent:
        try:
            return self.grant(form, fhir_base)
        except AuthFailure as failure:
            event = failure.event
            if event.body is None:
                event = replace(event, body={"error": event.error, "error_description": event.description})
            return event

    def grant(self, form: list[tuple[str, str]], fhir_base: str) -> AuthEvent:
        params = single_parameters(form)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise error("invalid_request", "grant_type is required (client_credentials)")
        if grant_type != GRANT_TYPE:
            raise error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported; use {GRANT_TYPE}")
        if params.get("client_assertion_type") != ASSERTION_TYPE or not params.get("client_assertion"):
            raise error("invalid_client", f"Client authentication failed: send client_assertion_type={ASSERTION_TYPE} "
                                          "and a signed client_assertion", status=401)
        client = self.verifier.verify(params["client_assertion"], token_url(fhir_base))
        if params.get("client_id") not in (None, client.id):
            raise error("invalid_client", "Client authentication failed: client_id is not the assertion's issuer",
                        client, status=401)
        if not client.active:
            raise error("unauthorized_client", f"Client {client.id} has been revoked", client)
        requested = params.get("scope", "").strip()
        if not requested:
            raise error("invalid_scope", "scope is required (e.g. system/Patient.rs)", client)
        asked, _other_words = parse_scopes(requested)
        granted = client.scopes.narrow(asked).text()
        if not granted:
            raise error("invalid_scope", f"None of the requested scopes is registered for this client "
                                         f"(registered: {client.scope})", client)
        access_token, grant = self.tokens.issue(client, granted, fhir_base)
        body = {"access_token": access_token, "token_type": "bearer", "expires_in": self.tokens.lifetime,
                "scope": granted}
        return AuthEvent(action=TOKEN, outcome=ISSUED, status=200, client_id=client.id,
                         organization=client.organization, kind=client.kind, token_id=grant.token_id,
                         scope=granted, body=body)


def single_parameters(form: list[tuple[str, str]]) -> dict[str, str]:
    """The form as a dict; RFC 6749 parameters may not be repeated."""
    params: dict[str, str] = {}
    for name, value in form:
        if name in params and name in SINGLE:
            raise error("invalid_request", f"{name} is given more than once")
        params.setdefault(name, value)
    return params


def error(code: str, description: str, client: Client | None = None, status: int = 400) -> AuthFailure:
    """A refused token request (RFC 6749 section 5.2), with what is known of the client."""
    body: dict[str, Any] = {"error": code, "error_description": description}
    return AuthFailure(AuthEvent(
        action=TOKEN, outcome=REFUSED, status=status, client_id=client.id if client else None,
        organization=client.organization if client else None, kind=client.kind if client else None,
        error=code, description=description, body=body))
