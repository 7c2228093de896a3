"""A subscription's owner as a caller: its client's registration as it stands now (revoked: none)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Connection, select

from ..security.context import IN_PROCESS, Caller
from ..security.scopes import ScopeSet
from ..store.schema import clients


def owner_caller(connection: Connection, client_id: str) -> Caller | None:
    """The caller a subscription acts as: its owner's organisation, kind and registered scopes (the policy
    then in force); None when the client is unknown or revoked. In-process owners (`system:...`) are the
    host's integration engine (no registered client may take such an id)."""
    if client_id.startswith(IN_PROCESS):
        return Caller.system(client_id.removeprefix(IN_PROCESS))
    row = connection.execute(select(clients.c.organization, clients.c.kind, clients.c.scope, clients.c.revoked)
                             .where(clients.c.id == client_id)).first()
    if row is None or row.revoked is not None:
        return None
    return Caller(subject=client_id, scopes=ScopeSet.of(row.scope), organization=row.organization, kind=row.kind)


class OwnerCache:
    """Owners' callers read at most once a second each (a revocation or a changed registration counts
    from then on, as tokens' revocations do in server processes)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.found: dict[str, tuple[float, Caller | None]] = {}
        self.prepared = float("-inf")  # when the owners' holdings were last made sure of (fanout.py)
        self.guard = threading.Lock()

    def caller(self, connection: Connection, client_id: str) -> Caller | None:
        now = time.monotonic()
        with self.guard:
            kept = self.found.get(client_id)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        found = owner_caller(connection, client_id)
        with self.guard:
            self.found[client_id] = (now, found)
        return found
