"""The audit record of a notification: what an owner's endpoint was sent is an access by the owner."""

from __future__ import annotations

from sqlalchemy import Connection, select

from ..security.audit import MAX_QUERY, AuditRecord, printable
from ..security.context import Caller
from ..store.among import among
from ..store.db import is_postgres
from ..store.repository import patient_ids_in
from ..store.schema import resources
from .notifications import Event
from .subscriptions import Definition


def disclosure(owner: Caller, subscription_id: str, definition: Definition, events: list[Event],
               answered: int) -> AuditRecord:
    """The audit record of a notification that carried events to its owner's endpoint: an access by the owner
    like any of its requests (its patients: those the versions it carried name, with those of the focuses
    it showed, from `focus_keys`)."""
    first, last = events[0].number, events[-1].number
    sent = {patient for event in events if event.shown for patient in patient_ids_in(event.body)}
    return AuditRecord(
        client=owner.subject, interaction="operation", action="E", organization=owner.organization,
        kind=owner.kind, request_id=f"notification-{subscription_id}-{first}", resource_type="Subscription",
        resource_id=subscription_id, status=answered or 502,
        detail=printable(f"notification of events {first}-{last} ({definition.content}) to "
                         f"{definition.endpoint}")[:MAX_QUERY], patients=sent)


def focus_keys(connection: Connection, focuses: list[tuple[str, str]]) -> list[int]:
    """The keys of the resources a notification showed (for the patients of its audit record)."""
    keys: list[int] = []
    postgres = is_postgres(connection)
    for resource_type in sorted({t for t, _ in focuses}):
        ids = sorted(i for t, i in focuses if t == resource_type)
        keys.extend(connection.execute(select(resources.c.pk).where(
            resources.c.type == resource_type, among(resources.c.id, ids, postgres))).scalars())
    return keys
