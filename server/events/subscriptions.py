"""Subscriptions (R5 Backport for R4): read and checked as written, and their delivery state kept beside them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sqlalchemy import delete, func, select, update

from ..fhir.dates import now_us, parse_instant
from ..fhir.outcome import FhirError, Issue
from ..store.schema import subscription_events, subscriptions
from ..store.search.holdings import holder_key
from .endpoints import EndpointPolicy
from .topics import TopicBook

if TYPE_CHECKING:
    from ..store.repository import Repository, StoredResource

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
CONTENTS = ("empty", "id-only", "full-resource")
WORKER = "system:notifications"
"""The subject of the delivery worker, which writes a subscription's status back."""
MAX_HEADERS = 10
MAX_TIMEOUT = 60


@dataclass
class Definition:
    """What a Subscription asks for, as the worker needs it."""

    topic: str
    endpoint: str
    headers: list[str] = field(default_factory=list)
    content: str = "id-only"
    filters: list[tuple[str, str, str]] = field(default_factory=list)  # (type, search parameter, value)
    heartbeat: int = 0
    timeout: int = 10
    max_count: int = 20
    end: str | None = None

    def text(self) -> str:
        return json.dumps(asdict(self))

    def ends_at(self) -> int | None:
        """When the subscription ends (`Subscription.end`, microseconds): events recorded after are not its."""
        return parse_instant(self.end) if self.end else None

    @classmethod
    def of(cls, text: str) -> Definition:
        data = json.loads(text)
        data["filters"] = [tuple(f) for f in data.get("filters", [])]
        return cls(**data)


def event_count(subscription_id: Any) -> Any:
    """The number of a subscription's last event (0 before its first): its events are numbered 1, 2, ... in
    `subscription_events`, so no row of `subscriptions` changes when events are numbered."""
    e = subscription_events.c
    return (select(func.coalesce(func.max(e.number), 0)).where(e.subscription == subscription_id)
            .scalar_subquery())


def pending() -> Any:
    """Whether a subscription has numbered events after the last its endpoint took."""
    e = subscription_events.c
    return select(e.number).where(e.subscription == subscriptions.c.id,
                                  e.number > subscriptions.c.delivered).exists()


def has_end() -> Any:
    """Whether a subscription's definition holds an `end` (`Definition.text` writes `"end": null` otherwise)."""
    return subscriptions.c.definition.not_like('%"end": null%')


def with_count() -> Any:
    """SELECT of subscriptions rows with their `events` (event_count) beside them."""
    return select(subscriptions, event_count(subscriptions.c.id).label("events"))


def invalid(message: str, where: str) -> FhirError:
    return FhirError(422, [Issue("invalid", message, (where,))])


def extension(element: Any, url: str) -> Any:
    """The value of an extension of an element (the first one with `url`), or None."""
    if not isinstance(element, dict):
        return None
    for found in element.get("extension") or []:
        if isinstance(found, dict) and found.get("url") == url:
            return next((v for k, v in found.items() if k.startswith("value")), None)
    return None


def read_definition(resource: dict[str, Any], topics: TopicBook, endpoints: EndpointPolicy) -> Definition:
    """The Subscription as the backport profile reads it; 422 naming the element when it cannot be served."""
    topic = topics.topics.get(str(resource.get("criteria") or ""))
    if topic is None:
        known = ", ".join(sorted(topics.topics))
        raise invalid(f"criteria must be the canonical of a SubscriptionTopic this server has ({known}), "
                      f"not {resource.get('criteria')!r}", "Subscription.criteria")
    channel = resource.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise invalid("channel.type must be rest-hook (the only channel this server delivers to)",
                      "Subscription.channel.type")
    endpoint = str(channel.get("endpoint") or "")
    refusal = endpoints.refusal(endpoint)
    if refusal:
        raise invalid(refusal, "Subscription.channel.endpoint")
    headers = [str(h) for h in channel.get("header") or []]
    if len(headers) > MAX_HEADERS or any(":" not in h or "\n" in h or "\r" in h for h in headers):
        raise invalid(f"channel.header holds at most {MAX_HEADERS} lines 'Name: value'", "Subscription.channel.header")
    payload = channel.get("payload")
    content = extension(channel.get("_payload"), PAYLOAD_CONTENT) or "id-only"
    if payload not in (None, "application/fhir+json", "application/json"):
        raise invalid("channel.payload must be application/fhir+json", "Subscription.channel.payload")
    if content not in CONTENTS:
        raise invalid(f"the payload content must be one of {', '.join(CONTENTS)}, not {content!r}",
                      "Subscription.channel.payload")
    definition = Definition(topic.url, endpoint, headers, content)
    for url, name, low, high in ((HEARTBEAT, "heartbeat", 0, 86400), (TIMEOUT, "timeout", 1, MAX_TIMEOUT),
                                 (MAX_COUNT, "max_count", 1, 1000)):
        value = extension(channel, url)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise invalid(f"{url.rsplit('/', 1)[-1]} must be a whole number from {low} to {high}",
                          "Subscription.channel.extension")
        setattr(definition, name, value)
    for number, criterion in enumerate(filter_criteria(resource)):
        definition.filters.extend(read_filter(criterion, topic, number))
    definition.end = resource.get("end")
    return definition


def filter_criteria(resource: dict[str, Any]) -> list[str]:
    found = []
    for entry in (resource.get("_criteria") or {}).get("extension") or []:
        if isinstance(entry, dict) and entry.get("url") == FILTER_CRITERIA:
            found.append(str(entry.get("valueString") or ""))
    return found


def read_filter(criterion: str, topic: Any, number: int) -> list[tuple[str, str, str]]:
    """`Type?name=value&...` of the topic's allowed filters, as (type, search parameter, value)."""
    where = f"Subscription.criteria.extension[{number}]"
    resource_type, mark, query = criterion.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) if mark else []
    if not pairs:
        raise invalid(f"filter criteria must read Type?name=value, not {criterion!r}", where)
    out = []
    for name, value in pairs:
        allowed = topic.filters.get(name)
        if allowed is None or allowed.resource_type != resource_type:
            names = ", ".join(f"{f.resource_type}?{f.name}" for f in topic.filters.values()) or "none"
            raise invalid(f"{topic.name} cannot be filtered by {resource_type}?{name}; it allows {names}", where)
        if not value:
            raise invalid(f"the filter {name} needs a value", where)
        out.append((resource_type, allowed.search, value))
    return out


class SubscriptionListener:
    """Checks each Subscription written and keeps its row in `subscriptions`, in the same transaction."""

    def __init__(self, topics: TopicBook, endpoints: EndpointPolicy) -> None:
        self.topics = topics
        self.endpoints = endpoints

    def written(self, repo: Repository, stored: StoredResource, resource: dict[str, Any] | None) -> None:
        if stored.type != "Subscription":
            return
        connection = repo.connection
        if resource is None:
            connection.execute(delete(subscriptions).where(subscriptions.c.id == stored.id))
            connection.execute(delete(subscription_events).where(subscription_events.c.subscription == stored.id))
            return
        if repo.caller.subject == WORKER:  # the worker shows a status it has already kept
            return
        definition = read_definition(resource, self.topics, self.endpoints)
        row = connection.execute(select(subscriptions.c.status, subscriptions.c.topic)
                                 .where(subscriptions.c.id == stored.id).with_for_update()).first()
        status = resource.get("status")
        if status not in ("requested", "off") and not (row is not None and status == row.status):
            raise invalid("status is the server's to set: write requested (the server makes it active after a "
                          "handshake) or off", "Subscription.status")
        if row is None:
            connection.execute(subscriptions.insert().values(
                id=stored.id, topic=definition.topic, owner_client=repo.caller.subject,
                owner_holder=holder_key(repo.policy, repo.caller.organization), status=status,
                definition=definition.text(), started=now_us(), delivered=0, attempts=0, failing_since=None,
                next_attempt=0, last_sent=0, heartbeat_due=None, error=None))
            return
        if row.topic != definition.topic:
            raise invalid("a subscription's topic cannot change; create another subscription",
                          "Subscription.criteria")
        values: dict[str, Any] = {"definition": definition.text(), "status": status}
        if status == "requested":  # asked again: a new handshake, retries from now
            values.update(attempts=0, failing_since=None, next_attempt=0, error=None)
        connection.execute(update(subscriptions).where(subscriptions.c.id == stored.id).values(**values))

    def before_commit(self, repo: Repository) -> None:
        return None
