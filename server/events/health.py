"""The notification backlog for /health: events not yet sent and how long the oldest has waited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from ..fhir.dates import now_us
from ..store.schema import event_outbox, subscription_events, subscriptions

SENDING = ("requested", "active")


def backlog(connection: Connection) -> dict[str, Any]:
    """Outbox rows not yet numbered, numbered events not yet taken by sending subscriptions, and the age
    in seconds of the oldest of either (0 when none waits)."""
    s, e = subscriptions.c, subscription_events.c
    outbox, outbox_oldest = connection.execute(select(func.count(), func.min(event_outbox.c.recorded))).one()
    undelivered = connection.execute(select(func.count()).select_from(subscription_events.join(
        subscriptions, and_(s.id == e.subscription, e.number > s.delivered))).where(s.status.in_(SENDING))).scalar()
    oldest_event = connection.execute(
        select(func.min(e.recorded)).select_from(subscription_events.join(
            subscriptions, and_(s.id == e.subscription, e.number == s.delivered + 1)))
        .where(s.status.in_(SENDING))).scalar()
    oldest = min((t for t in (outbox_oldest, oldest_event) if t is not None), default=None)
    return {"outboxDepth": int(outbox) + int(undelivered), "outbox": int(outbox), "undelivered": int(undelivered),
            "oldestUndeliveredAgeSeconds": 0 if oldest is None else round((now_us() - oldest) / 1e6, 3)}
