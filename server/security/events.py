"""What happened to one token request, revocation or bearer token: the result the HTTP layer answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOKEN = "token"
REVOKE = "revoke"
BEARER = "bearer"

ISSUED = "issued"
REVOKED = "revoked"
IGNORED = "ignored"  # a revocation of something that is not a live token of this server (RFC 7009: still 200)
REFUSED = "refused"


@dataclass(frozen=True)
class AuthEvent:
    """One token request, revocation request or refused bearer token, with what is known of the client.

    `action` is token, revoke or bearer; `outcome` issued, revoked, ignored or refused; `error` the RFC 6749 /
    RFC 6750 error code of a refusal and `description` its explanation; `status` the HTTP status to answer
    with and `body` the JSON to send (None for a refused bearer, answered with an OperationOutcome).
    `client_id`, `organization` and `kind` are those of the registered client when it is known, else
    what the request claimed (`client_id` only); `token_id` is the jti of the access token issued,
    revoked or refused, when known."""

    action: str
    outcome: str
    status: int
    client_id: str | None = None
    organization: str | None = None
    kind: str | None = None
    error: str | None = None
    description: str | None = None
    token_id: str | None = None
    scope: str | None = None
    body: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def refused(self) -> bool:
        return self.outcome == REFUSED


class AuthFailure(Exception):
    """A refusal, carrying its event (raised inside the security modules, answered by the HTTP layer)."""

    def __init__(self, event: AuthEvent) -> None:
        super().__init__(event.description or event.error or event.outcome)
        self.event = event
