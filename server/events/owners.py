"""A subscription's owner as a caller: its client's registration as it stands now (revoked: none)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from ..security.context import Caller
from ..security.scopes import ScopeSet
from ..store.schema import clients


def owner_caller(connection: Connection, client_id: str) -> Caller | None:
    """The caller a subscription acts as: its owner's organisation, kind and registered scopes (the policy
    then in force); None when the client is unknown or revoked. In-process owners (`system:...`) are the
    host's integration engine."""
    if client_id.startswith("system:"):
        return Caller(subject=client_id)
    row = connection.execute(select(clients.c.organization, clients.c.kind, clients.c.scope, clients.c.revoked)
                             .where(clients.c.id == client_id)).first()
    if row is None or row.revoked is not None:
        return None
    return Caller(subject=client_id, scopes=ScopeSet.of(row.scope), organization=row.organization, kind=row.kind)
