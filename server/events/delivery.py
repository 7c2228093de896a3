"""Delivery: one subscription at a time is claimed, its next notification sent and the outcome kept.

A claim is an advisory lock on PostgreSQL (held by the claiming transaction while the notification is
sent, so no two workers send a subscription's events at once, and a killed worker's claim ends with its
connection); on SQLite one worker process claims at all (worker.py). A notification carries the events
after the last the endpoint took, up to max-count, in number order; only a 2xx answer moves that mark,
so an event is sent until taken (at least once) and never out of order. A failure waits an exponentially
growing, jittered delay; a subscription failing for longer than the retry horizon goes to `error` with
the reason, its events kept for `$events`."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
import requests
from sqlalchemy import BigInteger, Connection, Integer, and_, bindparam, func, or_, select, update

from ..fhir.dates import now_us
from ..fhir.outcome import FhirError
from ..security.audit import AuditRecord
from ..security.context import Caller
from ..store.db import is_postgres, transaction
from ..store.repository import Repository
from ..store.schema import subscription_events, subscriptions
from ..store.services import StoreServices
from .disclosure import disclosure, focus_keys
from .ending import retire_ended
from .endpoints import EndpointPolicy
from .fanout import id_chunks
from .notifications import Event, notification_bundle, subscription_status
from .owners import OwnerCache
from .subscriptions import WORKER, Definition, pending, with_count

log = logging.getLogger(__name__)
SECOND = 1_000_000
CLAIM_CANDIDATES = 20
RETIRE_EVERY_S = 1.0
CLAIM_CLASS = 0x5EAC7
"""First key of the two-key advisory locks that claim a subscription (the second: hashtext of its id)."""


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are retried and where they may go (from Settings)."""

    retry_horizon_s: float = 24 * 3600
    retry_base_s: float = 1.0
    retry_max_delay_s: float = 300.0
    endpoints: EndpointPolicy = field(default_factory=EndpointPolicy)

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt: exponential in the failures so far, with full jitter above half."""
        ceiling = min(self.retry_max_delay_s, self.retry_base_s * 2 ** min(attempts - 1, 30))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass
class Outcome:
    """What one attempt did: taken or not, the last event number it carried, why it failed."""

    taken: bool
    last: int | None = None
    reason: str = ""
    final: bool = False  # no retry (the owner is gone): error at once
    audit: AuditRecord | None = None  # of a notification that carried events to the owner's endpoint
    shown: list[tuple[str, str]] = field(default_factory=list)  # the (type, id) of the focuses it showed


def readable(repo: Repository, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (type, id) among `keys` the repository's caller reads now: one statement per type (none for a
    caller who reaches everything: the host's integration engine)."""
    if repo.reach is None:
        return set(keys)
    found: set[tuple[str, str]] = set()
    for resource_type in sorted({t for t, _ in keys}):
        ids = sorted(i for t, i in keys if t == resource_type)
        try:
            answers = repo.matching_ids(resource_type, [[("_id", ",".join(chunk))] for chunk in id_chunks(ids)])
        except FhirError as exc:
            if exc.status not in (401, 403):
                raise
            continue  # the owner may no longer read the type at all
        found.update((resource_type, resource_id) for ids_found in answers for resource_id in ids_found)
    return found


def checked_events(repo: Repository, found: list[Any], content: str) -> list[Event]:
    """Numbered events (rows of number, type, id, version, recorded) with their focus checked against the
    repository's caller as it stands now: id-only by one statement per type, full-resource by reading the
    version; an `empty` payload shows no focus, so none is looked up."""
    visible = readable(repo, {(row.type, row.id) for row in found}) if content == "id-only" else set()
    events = []
    for number, resource_type, resource_id, version, recorded in found:
        shown, body = (resource_type, resource_id) in visible, None
        if content == "full-resource":
            try:
                body = repo.vread(resource_type, resource_id, str(version)).body
                shown = True
            except FhirError:
                shown = False  # no longer the caller's to see: the event is counted, its focus withheld
        events.append(Event(number, resource_type, resource_id, version, recorded, shown, body))
    return events


@dataclass(frozen=True)
class DeliveryStatements:
    """The statements of every delivery, built once with their parameters bound by name (`now`, `chosen`,
    `after`, `count`, ...): building them per delivery cost the worker more than running them."""

    candidates: Any
    locked_candidate: Any
    claimed: Any
    events: Any
    taken: Any

    @classmethod
    @cache
    def built(cls) -> DeliveryStatements:
        s = subscriptions.c
        e = subscription_events.c
        now = bindparam("now", type_=BigInteger)
        candidates = (select(s.id).where(due(now)).order_by(s.next_attempt, s.last_sent, s.id)  # least lately served
                      .limit(CLAIM_CANDIDATES))
        listed = candidates.subquery()
        return cls(
            candidates=candidates.limit(1),
            # the first candidate whose lock is free: tried in order, one statement (PostgreSQL)
            locked_candidate=select(listed.c.id).where(
                func.pg_try_advisory_xact_lock(CLAIM_CLASS, func.hashtext(listed.c.id))).limit(1),
            # read again under the claim: another worker may have sent it since the candidates were listed
            claimed=with_count().where(s.id == bindparam("chosen"), due(now)),
            events=select(e.number, e.type, e.id, e.version, e.recorded)
            .where(e.subscription == bindparam("subscription"), e.number > bindparam("after"))
            .order_by(e.number).limit(bindparam("count", type_=Integer)),
            taken=update(subscriptions).where(  # unless its owner changed its status meanwhile
                s.id == bindparam("subscription"), s.status == bindparam("was")).values(
                attempts=0, failing_since=None, next_attempt=0, error=None, status="active",
                last_sent=bindparam("sent_at", type_=BigInteger),
                heartbeat_due=bindparam("heartbeat_at", type_=BigInteger),
                delivered=func.coalesce(bindparam("taken_to", type_=BigInteger), s.delivered)),
        )


def due(now: Any) -> Any:
    s = subscriptions.c
    return and_(s.next_attempt <= now, or_(
        s.status == "requested",
        and_(s.status == "active", or_(pending(), and_(s.heartbeat_due.is_not(None), s.heartbeat_due <= now)))))


class Deliverer:
    """Claims due subscriptions and sends their notifications."""

    def __init__(self, services: StoreServices, settings: DeliverySettings, base: str) -> None:
        self.services = services
        self.settings = settings
        self.base = base
        self.sessions = threading.local()  # one HTTP session (its kept connections) per delivering thread
        self.owners = OwnerCache()
        self.retired_at = 0.0  # monotonic time of the last look for ended subscriptions

    @property
    def http(self) -> requests.Session:
        """This thread's HTTP session (a session's cookie and connection handling is not shared safely)."""
        session = getattr(self.sessions, "session", None)
        if session is None:
            session = self.sessions.session = requests.Session()
        return session

    def deliver_one(self) -> bool:
        """Claim one due subscription and make one attempt; False when none is due (or all are claimed)."""
        database = self.services.database
        # owners' reaches test objections on the kept rows: they must exist before any event is checked (the
        # fan-out makes them too, but events numbered before they existed may be sent first)
        self.services.holdings.ensure_objections()
        if database.writer.dialect.name == "postgresql":
            with database.writer.connect() as connection, connection.begin():
                row = self.claim(connection)
                if row is None:
                    return False
                outcome = self.attempt(connection, row)
                self.settle(connection, row, outcome)
        else:
            with database.reader.connect() as connection:
                row = self.claim(connection)
                if row is None:
                    return False
                outcome = self.attempt(connection, row)
            with transaction(database, writing=True) as connection:
                self.settle(connection, row, outcome)
        return True

    def claim(self, connection: Connection) -> Any:
        """A due subscription no other worker holds, read under the claim (None: none)."""
        now = now_us()
        statements = DeliveryStatements.built()
        listing = statements.locked_candidate if is_postgres(connection) else statements.candidates
        chosen = connection.execute(listing, {"now": now}).scalar()
        if chosen is None:
            return None
        return connection.execute(statements.claimed, {"chosen": chosen, "now": now}).first()

    def attempt(self, connection: Connection, row: Any) -> Outcome:
        definition = Definition.of(row.definition)
        owner = self.owners.caller(connection, row.owner_client)
        if owner is None:
            return Outcome(False, reason=f"the subscription's owner {row.owner_client} is no longer a registered "
                                         "client", final=True)
        if row.status == "requested":
            kind, events = "handshake", []
        elif row.events > row.delivered:
            kind = "event-notification"
            events = self.events(connection, owner, row, definition)
        else:
            kind, events = "heartbeat", []
        status = subscription_status(row.id, row.topic, row.status,
                                     kind, row.events, events, definition.content)
        bundle = notification_bundle(self.base, status, row.id, events, definition.content)
        reason, answered = self.post(definition, orjson.dumps(bundle))
        record = disclosure(owner, row.id, definition, events, answered) if events and answered is not None else None
        shown = sorted({(event.type, event.id) for event in events if event.shown}) if record else []
        if reason:
            return Outcome(False, reason=reason, audit=record, shown=shown)
        return Outcome(True, last=events[-1].number if events else None, audit=record, shown=shown)

    def events(self, connection: Connection, owner: Caller, row: Any, definition: Definition) -> list[Event]:
        """The next events to send, their focus checked against the owner's access as it stands now."""
        found = connection.execute(DeliveryStatements.built().events, {
            "subscription": row.id, "after": row.delivered, "count": definition.max_count}).all()
        return checked_events(Repository(connection, owner, self.services), found, definition.content)

    def post(self, definition: Definition, body: bytes) -> tuple[str, int | None]:
        """Send a notification: '' when the endpoint took it (2xx), else why not; and the endpoint's HTTP
        status (0 when no answer came, None when nothing was sent)."""
        refusal = self.settings.endpoints.refusal(definition.endpoint)
        if refusal:
            return refusal, None
        headers = {"Content-Type": "application/fhir+json"}
        for line in definition.headers:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        try:
            answer = self.http.post(definition.endpoint, data=body, headers=headers, timeout=definition.timeout,
                                    allow_redirects=False)
        except requests.RequestException as exc:
            return f"the endpoint could not be reached: {type(exc).__name__}: {str(exc)[:200]}", 0
        if 200 <= answer.status_code < 300:
            return "", answer.status_code
        return f"the endpoint answered {answer.status_code}", answer.status_code

    def settle(self, connection: Connection, row: Any, outcome: Outcome) -> None:
        """Keep the attempt's outcome and its audit record; a change of status is shown on the Subscription in
        the same transaction."""
        if outcome.audit is not None:
            self.services.audit.keep(self.services.database, outcome.audit, connection,
                                     focus_keys(connection, outcome.shown))
        now = now_us()
        definition = Definition.of(row.definition)
        if outcome.taken:
            settled = connection.execute(DeliveryStatements.built().taken, {
                "subscription": row.id, "was": row.status, "sent_at": now, "taken_to": outcome.last,
                "heartbeat_at": now + definition.heartbeat * SECOND if definition.heartbeat else None})
            if settled.rowcount and row.status != "active":
                self.write_back(connection, row.id, "active", None)
            return
        since = row.failing_since or now
        attempts = row.attempts + 1
        log.info("delivery to subscription %s failed (attempt %d): %s", row.id, attempts, outcome.reason)
        if outcome.final or now - since >= self.settings.retry_horizon_s * SECOND:
            error = (outcome.reason if outcome.final else
                     f"no delivery for {round((now - since) / SECOND)} s after {attempts} attempts; "
                     f"last: {outcome.reason}")
            erred = connection.execute(update(subscriptions).where(
                subscriptions.c.id == row.id, subscriptions.c.status == row.status).values(
                attempts=attempts, failing_since=since, status="error", error=error))
            if erred.rowcount:
                self.write_back(connection, row.id, "error", error)
            return
        connection.execute(update(subscriptions).where(subscriptions.c.id == row.id).values(
            attempts=attempts, failing_since=since, error=outcome.reason,
            next_attempt=now + int(self.settings.delay(attempts) * SECOND)))

    def retire_ended(self) -> int:
        """Turn `off` the subscriptions that have ended (see `ending`), at most once every RETIRE_EVERY_S s."""
        if time.monotonic() - self.retired_at < RETIRE_EVERY_S:
            return 0
        self.retired_at = time.monotonic()
        return retire_ended(self.services, self.write_back)

    def write_back(self, connection: Connection, subscription_id: str, status: str, error: str | None) -> None:
        """Show a status change on the Subscription resource (a new version, written by the worker)."""
        repo = Repository(connection, Caller.system("notifications"), self.services)
        assert repo.caller.subject == WORKER
        current = repo.fetch_current("Subscription", subscription_id)
        if current is None or current.deleted:
            return
        body = current.json()
        body["status"] = status
        body.pop("error", None)
        if error:
            body["error"] = error
        repo.update("Subscription", subscription_id, body)
        repo.finish()
