"""Client-assertion ids seen: a jti is accepted once per client within its lifetime, across all processes."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ..store.db import Database, transaction
from ..store.schema import assertion_jtis

PURGE_EVERY = 60.0  # seconds between deletions of expired rows, per process


class ReplayGuard:
    """Records each accepted assertion's (client, jti) until its exp in `assertion_jtis`; the primary key
    makes a second insert fail in whichever process tries it, so a replay is caught everywhere."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.clock = clock
        self.purged = 0.0

    def first_use(self, client_id: str, jti: str, expires: int) -> bool:
        """Record the jti; False when it was recorded before (a replay)."""
        now = self.clock()
        try:
            with transaction(self.database, writing=True) as connection:
                if now - self.purged >= PURGE_EVERY:
                    self.purged = now
                    connection.execute(delete(assertion_jtis).where(assertion_jtis.c.expires < int(now)))
                connection.execute(assertion_jtis.insert().values(client_id=client_id, jti=jti, expires=expires))
        except IntegrityError:
            return False
        return True
