"""The transactional outbox: a flush records the topic events of the versions it writes, in the writer's
own transaction, so a write that commits has its events and one that rolls back has none."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..fhir import jsontext
from ..fhir.dates import now_us
from ..store.bulk import insert_rows
from .topics import TopicBook

if TYPE_CHECKING:
    from ..store.repository import Repository

OUTBOX_COLUMNS = ("topic", "type", "id", "version", "interaction", "recorded")
WAKE_CHANNEL = "sharedcare_events"
"""PostgreSQL NOTIFY channel: sent in the writer's transaction, so workers wake when it commits."""


def interaction_of(version: int, body: str | None) -> str:
    if body is None:
        return "delete"
    return "create" if version == 1 else "update"


def parsed_once(body: str | None) -> Callable[[], dict[str, Any] | None]:
    """The version's resource, parsed on first need (most triggers have no criteria and never ask)."""
    kept: list[dict[str, Any] | None] = []

    def resource() -> dict[str, Any] | None:
        if not kept:
            kept.append(jsontext.loads(body) if body is not None else None)
        return kept[0]

    return resource


class Outbox:
    """Records topic events at each flush (see Repository.flush)."""

    def __init__(self, topics: TopicBook) -> None:
        self.topics = topics

    def record(self, repo: Repository, versions: list[tuple[Any, ...]]) -> None:
        """Versions are (pk, version, type, id, updated, method, body) rows about to be inserted."""
        by_type = self.topics.by_type
        rows = []
        recorded = now_us()
        for _pk, version, resource_type, resource_id, _updated, _method, body in versions:
            if resource_type not in by_type:
                continue
            interaction = interaction_of(version, body)
            for topic in self.topics.fired(resource_type, interaction, parsed_once(body)):
                rows.append((topic, resource_type, resource_id, version, interaction, recorded))
        if not rows:
            return
        insert_rows(repo.connection, "event_outbox", OUTBOX_COLUMNS, rows)
        if repo.postgres:
            repo.connection.execute(text(f"NOTIFY {WAKE_CHANNEL}"))
