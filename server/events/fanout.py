"""Fan-out: the outbox's events become numbered events of the subscriptions they concern, in one transaction.

An outbox event concerns a subscription of its topic when the focus matches the subscription's filters
and its owner may read it: both are one search as the owner (`_id` plus the filters), so the owner's reach
(its policy, scopes and objections) enters the query like any of its searches. Numbers are given in outbox
order, contiguously per subscription; the outbox rows go in the same transaction, so a crash repeats the
whole step or none of it. One fan-out runs at a time (an advisory lock on PostgreSQL; on SQLite the
worker that holds the claim)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, select, text

from ..fhir.outcome import FhirError
from ..store.among import among
from ..store.bulk import insert_rows
from ..store.db import is_postgres, transaction
from ..store.repository import Repository
from ..store.schema import event_outbox, resource_versions, resources, subscriptions
from ..store.search.parse import MAX_VALUE_LENGTH
from ..store.services import StoreServices
from .owners import OwnerCache
from .subscriptions import Definition, event_count

log = logging.getLogger(__name__)
FANOUT_LOCK = 0x5EAC6_0001
BATCH = 500
IDS_PER_SEARCH = 200
EVENT_COLUMNS = ("subscription", "number", "type", "id", "version", "recorded")
REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
LIVE = ("requested", "active", "error")  # an erring subscription still numbers events, for $events


@dataclass(frozen=True)
class OutboxEvent:
    seq: int
    topic: str
    type: str
    id: str
    version: int
    recorded: int


def fan_out(services: StoreServices, cache: OwnerCache | None = None) -> int | None:
    """Number one batch of outbox events for their subscriptions; returns how many outbox rows it took (None:
    another worker is fanning out)."""
    cache = cache or OwnerCache()
    prepare_owners(services, cache)
    with transaction(services.database, writing=True) as connection:
        if is_postgres(connection) and not connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": FANOUT_LOCK}).scalar():
            return None
        rows = [OutboxEvent(*row) for row in connection.execute(
            select(event_outbox.c.seq, event_outbox.c.topic, event_outbox.c.type, event_outbox.c.id,
                   event_outbox.c.version, event_outbox.c.recorded).order_by(event_outbox.c.seq).limit(BATCH))]
        if not rows:
            return 0
        topics = sorted({row.topic for row in rows})
        subs = connection.execute(
            select(subscriptions.c.id, subscriptions.c.topic, subscriptions.c.owner_client,
                   subscriptions.c.definition, event_count(subscriptions.c.id).label("events"),
                   subscriptions.c.started)
            .where(subscriptions.c.topic.in_(topics), subscriptions.c.status.in_(LIVE))
            .order_by(subscriptions.c.id)).all()  # one fan-out at a time: the counts cannot move under it
        bodies = version_bodies(connection, rows) if subs else {}
        by_topic: dict[str, list[OutboxEvent]] = {}
        for row in rows:
            by_topic.setdefault(row.topic, []).append(row)
        asked = []
        for sub in subs:
            definition = Definition.of(sub.definition)
            ends = definition.ends_at()
            mine = [row for row in by_topic.get(sub.topic, [])
                    if row.recorded >= sub.started and (ends is None or row.recorded <= ends)]
            candidates = [row for row in mine
                          if may_match(definition, row, bodies.get((row.type, row.id, row.version)))]
            asked.append(Asked(sub.owner_client, definition, candidates, mine))
        matched = matching(services, connection, cache, asked)
        numbered: list[tuple[Any, ...]] = []
        for sub, question, found in zip(subs, asked, matched, strict=True):
            number = sub.events
            for row in question.mine:
                if (row.type, row.id) in found:
                    number += 1
                    numbered.append((sub.id, number, row.type, row.id, row.version, row.recorded))
        insert_rows(connection, "subscription_events", EVENT_COLUMNS, numbered)
        connection.execute(delete(event_outbox).where(
            among(event_outbox.c.seq, [row.seq for row in rows], is_postgres(connection))))
        return len(rows)


def version_bodies(connection: Connection, rows: list[OutboxEvent]) -> dict[tuple[str, str, int], str | None]:
    """The stored text of each event's version (for `may_match`), one query per type."""
    found: dict[tuple[str, str, int], str | None] = {}
    postgres = is_postgres(connection)
    for resource_type in sorted({row.type for row in rows}):
        wanted = {(row.id, row.version) for row in rows if row.type == resource_type}
        statement = (select(resources.c.id, resource_versions.c.version, resource_versions.c.body)
                     .join(resource_versions, resource_versions.c.pk == resources.c.pk)
                     .where(resources.c.type == resource_type,
                            among(resources.c.id, sorted({i for i, _ in wanted}), postgres),
                            among(resource_versions.c.version, sorted({v for _, v in wanted}), postgres)))
        for resource_id, version, body in connection.execute(statement):
            if (resource_id, version) in wanted:
                found[(resource_type, resource_id, version)] = body
    return found


def may_match(definition: Definition, event: OutboxEvent, body: str | None) -> bool:
    """A necessary condition, read off the version's text, for a filter naming a reference (`patient=
    Patient/123`): the text names it. Only narrows which events the owner's search is asked about; the
    search decides."""
    if body is None:
        return True
    for filter_type, _search, value in definition.filters:
        if filter_type == event.type and REFERENCE.match(value) and \
                f'"{value}"' not in body and f'/{value}"' not in body:
            return False
    return True


@dataclass(frozen=True)
class Asked:
    """One subscription's question in a fan-out: which of its candidate events match (`mine`: all of its
    topic's events in the batch, numbered in that order)."""

    owner_client: str
    definition: Definition
    candidates: list[OutboxEvent]
    mine: list[OutboxEvent]


def matching(services: StoreServices, connection: Connection, cache: OwnerCache,
             asked: list[Asked]) -> list[set[tuple[str, str]]]:
    """For each subscription, the (type, id) of its candidates' focuses that its owner reads now and its
    filters match: one search per subscription and type (`_id` plus the filters, as the owner, so the
    owner's reach enters the query), all of an owner's searches of a type in one statement."""
    found: list[set[tuple[str, str]]] = [set() for _ in asked]
    for owner_client in sorted({question.owner_client for question in asked if question.candidates}):
        caller = cache.caller(connection, owner_client)
        if caller is None:
            continue  # no longer a registered client: nothing is its subscriptions' to see
        repo = Repository(connection, replace(caller, request_id="notifications"), services)
        searches: dict[str, list[tuple[int, list[tuple[str, str]]]]] = {}
        for index, question in enumerate(asked):
            if question.owner_client != owner_client:
                continue
            for resource_type, params in owner_searches(question):
                searches.setdefault(resource_type, []).append((index, params))
        for resource_type, wanted in sorted(searches.items()):
            try:
                answers = repo.matching_ids(resource_type, [params for _index, params in wanted])
            except FhirError as exc:
                if exc.status not in (401, 403):
                    raise  # not a refusal: the fan-out fails whole and is tried again, nothing is dropped
                log.warning("subscriptions of %s: it may no longer search %s: %s", owner_client, resource_type, exc)
                continue  # the owner may not read them: they are not its events
            for (index, _params), ids in zip(wanted, answers, strict=True):
                found[index].update((resource_type, resource_id) for resource_id in ids)
    return found


def owner_searches(question: Asked) -> list[tuple[str, list[tuple[str, str]]]]:
    """The searches (type, criteria) that say which of a subscription's candidates match its filters."""
    definition = question.definition
    wanted = []
    for resource_type in sorted({event.type for event in question.candidates}):
        filters = [(search, value) for filter_type, search, value in definition.filters if filter_type == resource_type]
        if any(filter_type != resource_type for filter_type, _s, _v in definition.filters) and not filters:
            continue  # filtered on another type only: nothing of this type matches
        ids = sorted({event.id for event in question.candidates if event.type == resource_type})
        wanted.extend((resource_type, [("_id", ",".join(chunk)), *filters]) for chunk in id_chunks(ids))
    return wanted


def id_chunks(ids: list[str]) -> list[list[str]]:
    """The ids in groups a search's `_id` takes (at most IDS_PER_SEARCH values, MAX_VALUE_LENGTH characters)."""
    chunks: list[list[str]] = [[]]
    length = 0
    for resource_id in ids:
        if len(chunks[-1]) >= IDS_PER_SEARCH or length + len(resource_id) + 1 > MAX_VALUE_LENGTH:
            chunks.append([])
            length = 0
        chunks[-1].append(resource_id)
        length += len(resource_id) + 1
    return [chunk for chunk in chunks if chunk]


def prepare_owners(services: StoreServices, cache: OwnerCache) -> None:
    """Make the kept rows of the owners' organisations before the fan-out's transaction (as a request would),
    looking for new owners at most once a second."""
    now = time.monotonic()
    if now - cache.prepared < cache.seconds:
        return
    cache.prepared = now
    with services.database.reader.connect() as connection:
        owners = connection.execute(select(subscriptions.c.owner_client).distinct()
                                    .where(subscriptions.c.status.in_(LIVE))).scalars().all()
        callers = [cache.caller(connection, owner) for owner in owners]
    for caller in callers:
        if caller is not None:
            services.prepare(caller)
