"""Subscriptions past their `end`: turned off once every event recorded before it is numbered and delivered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, text, update

from ..fhir.dates import now_us
from ..store.among import among
from ..store.db import is_postgres, transaction
from ..store.schema import event_outbox, subscriptions
from ..store.services import StoreServices
from .fanout import FANOUT_LOCK
from .subscriptions import Definition, has_end, pending

SETTLE_US = 5_000_000
"""How long after its end a subscription stays on: an event is recorded when its write flushes, before the
write commits, so a write that flushed before the end may still be committing after it."""


def ended_subscriptions(connection: Connection, now: int, among_ids: list[str] | None = None) -> list[Any]:
    """Requested or active subscriptions past their end with every event delivered and none of their topic
    recorded before the end still waiting in the outbox (to be numbered for them)."""
    s = subscriptions.c
    statement = select(s.id, s.topic, s.status, s.definition).where(
        s.status.in_(("requested", "active")), has_end(), ~pending())
    if among_ids is not None:
        statement = statement.where(among(s.id, among_ids, is_postgres(connection)))
    found = []
    for row in connection.execute(statement):
        ends = Definition.of(row.definition).ends_at()
        if ends is None or ends + SETTLE_US > now:
            continue
        waiting = connection.execute(select(event_outbox.c.seq).where(
            event_outbox.c.topic == row.topic, event_outbox.c.recorded <= ends).limit(1)).first()
        if waiting is None:
            found.append(row)
    return found


def retire_ended(services: StoreServices, write_back: Callable[[Connection, str, str, str | None], None]) -> int:
    """Turn `off` the subscriptions that have ended (`write_back` shows it on each Subscription); how many.
    Writes only when one has ended."""
    database = services.database
    with database.reader.connect() as connection:
        ended = [row.id for row in ended_subscriptions(connection, now_us())]
    if not ended:
        return 0
    retired = 0
    with transaction(database, writing=True) as connection:
        if is_postgres(connection):  # no fan-out numbers events meanwhile (it would for a subscription turned off)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FANOUT_LOCK})
        for row in ended_subscriptions(connection, now_us(), ended):  # again, under the lock
            turned = connection.execute(update(subscriptions).where(
                subscriptions.c.id == row.id, subscriptions.c.status == row.status)
                .values(status="off", heartbeat_due=None))
            if turned.rowcount:
                write_back(connection, row.id, "off", None)
                retired += 1
    return retired
