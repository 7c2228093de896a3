"""Revoked access tokens and clients as one process sees them: read from the database at most once a second."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..store.db import Database, transaction
from ..store.schema import clients, token_revocations

REFRESH_EVERY = 1.0


class Revocations:
    """Which access tokens (by jti) and which clients are revoked.

    The revoked sets are read from the database when they are more than `interval` seconds old, by one
    thread while the others go on with the previous sets. So a revocation made by another process takes
    effect here within `interval` (one second) plus the time of one read; one made by this process takes
    effect at once. Rows of tokens past their exp are deleted now and then (they are refused anyway)."""

    def __init__(self, database: Database, interval: float = REFRESH_EVERY,
                 clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.interval = interval
        self.clock = clock
        self.tokens: frozenset[str] = frozenset()
        self.local: dict[str, int] = {}  # tokens revoked by this process, kept across reads until they expire
        self.clients: frozenset[str] = frozenset()
        self.read_at = float("-inf")
        self.lock = threading.Lock()

    def revoked(self, token_id: str, client_id: str) -> bool:
        """Whether the token or its client is revoked (as of at most `interval` seconds ago)."""
        if time.monotonic() - self.read_at >= self.interval:
            self.refresh()
        return token_id in self.tokens or client_id in self.clients

    def refresh(self, wait: bool = False) -> None:
        if not self.lock.acquire(blocking=wait or self.read_at == float("-inf")):
            return  # another thread is reading them; use the sets as they are
        try:
            started = time.monotonic()
            with transaction(self.database, writing=False) as connection:
                tokens = connection.execute(select(token_revocations.c.jti).where(
                    token_revocations.c.expires >= int(self.clock()))).scalars().all()
                revoked_clients = connection.execute(select(clients.c.id).where(
                    clients.c.revoked.is_not(None))).scalars().all()
            now = self.clock()
            self.local = {jti: expires for jti, expires in list(self.local.items()) if expires >= now}
            self.tokens = frozenset(tokens) | frozenset(self.local)
            self.clients = frozenset(revoked_clients) | self.clients  # a client is never reinstated
            self.read_at = started
        finally:
            self.lock.release()

    def revoke_token(self, token_id: str, expires: int) -> None:
        """Revoke one access token: recorded in the database for every process, effective here at once."""
        now = int(self.clock())
        try:
            with transaction(self.database, writing=True) as connection:
                connection.execute(delete(token_revocations).where(token_revocations.c.expires < now))
                connection.execute(token_revocations.insert().values(jti=token_id, expires=expires))
        except IntegrityError:
            pass  # revoked already
        self.local[token_id] = expires
        self.tokens = self.tokens | {token_id}

    def client_revoked(self, client_id: str) -> None:
        """Note at once in this process that a client was revoked (the registry recorded it)."""
        self.clients = self.clients | {client_id}
