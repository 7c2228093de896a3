"""The caller's context: who is asking and with what rights, carried into every repository call."""

from __future__ import annotations

from dataclasses import dataclass, field

from .scopes import INTERACTION_LETTERS, ScopeSet

IN_PROCESS = "system:"
"""The subject prefix of the server's own in-process components (no registered client may carry it)."""

HOST = "host"
"""The organisation of the record's own host (in-process loaders and jobs act for it)."""


@dataclass(frozen=True)
class Caller:
    """The client, its organisation and kind, the granted scopes and the stated purpose of one request.

    `organization` is an identifier token (`system|value`, ODS codes by default); `kind` names the
    access policy (`profiles/access/<kind>.yaml`). `break_glass` holds the stated reason of an
    emergency request whose purpose of use is ETREAT (whether it opens anything is the policy's call)."""

    subject: str
    scopes: ScopeSet = field(default_factory=ScopeSet.everything)
    organization: str | None = None
    kind: str = "integration"
    purpose: str | None = None
    break_glass: str | None = None
    request_id: str | None = None
    token_id: str | None = None
    source: str | None = None

    @classmethod
    def system(cls, name: str, request_id: str | None = None, organization: str | None = HOST) -> Caller:
        """A named in-process component (a loader, a case-management job) acting for `organization`
        under the integration policy: audited like any client, never anonymous."""
        return cls(subject=f"{IN_PROCESS}{name}", organization=organization, request_id=request_id)

    def for_request(self, purpose: str | None, break_glass: str | None, request_id: str | None) -> Caller:
        """This caller as one request states it (its purpose of use, break-glass reason and id): a copy made
        without `dataclasses.replace`'s field-by-field walk, as it is made at every request."""
        copy = object.__new__(Caller)
        copy.__dict__.update(self.__dict__, purpose=purpose, break_glass=break_glass, request_id=request_id)
        return copy

    def allows(self, interaction: str, resource_type: str) -> bool:
        """Whether the scopes grant an interaction (read, vread, search, create, update, delete, history-*)."""
        letters = INTERACTION_LETTERS.get(interaction, interaction)
        return all(self.scopes.allows(letter, resource_type) for letter in letters)
