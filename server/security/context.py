"""The caller's context: who is asking and with what rights, carried into every repository call."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Caller:
    """The identity, organisation, purpose and scopes of whoever makes a request."""

    subject: str
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"system/*.*"}))
    organization: str | None = None
    purpose: str | None = None
    request_id: str | None = None
    source: str | None = None

    @classmethod
    def system(cls, name: str, request_id: str | None = None) -> Caller:
        """The server itself or a trusted in-process component (loaders, case-management jobs)."""
        return cls(subject=f"system:{name}", request_id=request_id)

    @classmethod
    def anonymous(cls, request_id: str | None = None) -> Caller:
        return cls(subject="anonymous", request_id=request_id)

    def allows(self, action: str, resource_type: str) -> bool:
        """Whether the scopes grant `action` (read or write) on a resource type (SMART scope syntax)."""
        wanted = "read" if action in ("read", "search", "history", "vread") else "write"
        for scope in self.scopes:
            _, _, rest = scope.partition("/")
            scope_type, _, access = rest.partition(".")
            if scope_type in ("*", resource_type) and access in ("*", wanted, "cruds"):
                return True
        return False
