"""Subscription $status and $events (R5 Backport for R4): a subscription's state and its numbered events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ...events.delivery import checked_events
from ...events.notifications import notification_bundle, subscription_status
from ...events.subscriptions import CONTENTS, Definition, with_count
from ...fhir.dates import format_instant, now_us
from ...fhir.outcome import bad_request, not_found
from ...fhir.text import plain_int
from ...store.schema import subscription_events, subscriptions
from ..model import FhirResponse
from ..router import Interaction, Operation
from .params import OperationParams

if TYPE_CHECKING:
    from ..app import FhirApi

MAX_EVENTS = 500


def subscription_row(ix: Interaction) -> object:
    ix.repo.read("Subscription", ix.id)  # in the caller's reach (its organisation's), or 404
    row = ix.repo.connection.execute(with_count().where(subscriptions.c.id == ix.id)).first()
    if row is None:
        raise not_found(f"Subscription/{ix.id} is not known")
    return row


def status(ix: Interaction) -> FhirResponse:
    """The subscription's status: events since it started, its state and, when failing, why."""
    row = subscription_row(ix)
    parameters = subscription_status(row.id, row.topic, row.status, "query-status", row.events, [],  # type: ignore[attr-defined]
                                     "id-only", row.error)  # type: ignore[attr-defined]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 1, "timestamp": format_instant(now_us()),
              "entry": [{"fullUrl": f"{ix.request.base_url}/Subscription/{ix.id}/$status", "resource": parameters,
                         "search": {"mode": "match"}}]}
    return FhirResponse(200, bundle)


def number_param(params: OperationParams, name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if plain_int(str(value)) is None or int(str(value)) < 1:
        raise bad_request(f"{name} must be a positive event number, not {value!r}", name, code="value")
    return int(str(value))


def events(ix: Interaction) -> FhirResponse:
    """The events numbered from eventsSinceNumber to eventsUntilNumber (at most MAX_EVENTS), as a notification
    of type query-event; each focus checked against the caller's access as it stands."""
    row = subscription_row(ix)
    params = OperationParams(ix.request)
    last = row.events  # type: ignore[attr-defined]
    since = number_param(params, "eventsSinceNumber", max(1, last - MAX_EVENTS + 1))
    until = number_param(params, "eventsUntilNumber", last)
    asked_both = params.get("eventsSinceNumber") is not None and params.get("eventsUntilNumber") is not None
    if until < since and asked_both:
        raise bad_request("eventsUntilNumber is before eventsSinceNumber", "eventsUntilNumber", code="value")
    if until - since + 1 > MAX_EVENTS:
        raise bad_request(f"At most {MAX_EVENTS} events at once: narrow eventsSinceNumber..eventsUntilNumber",
                          "eventsUntilNumber", code="too-costly")
    definition = Definition.of(row.definition)  # type: ignore[attr-defined]
    content = str(params.get("content") or definition.content)
    if content not in CONTENTS:
        raise bad_request(f"content must be one of {', '.join(CONTENTS)}", "content", code="value")
    e = subscription_events.c
    found = ix.repo.connection.execute(
        select(e.number, e.type, e.id, e.version, e.recorded)
        .where(e.subscription == ix.id, e.number >= since, e.number <= until).order_by(e.number)).all()
    listed = checked_events(ix.repo, found, content)
    parameters = subscription_status(ix.id, row.topic, row.status, "query-event", last, listed,  # type: ignore[attr-defined]
                                     content, row.error)  # type: ignore[attr-defined]
    return FhirResponse(200, notification_bundle(ix.request.base_url, parameters, ix.id, listed, content))


def register(api: FhirApi) -> None:
    reads = ("Subscription",)
    api.add_operation(Operation("status", status, ("instance",), ("Subscription",), methods=("GET", "POST"),
                                definition="http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                                           "backport-subscription-status", reads=reads))
    api.add_operation(Operation("events", events, ("instance",), ("Subscription",), methods=("GET", "POST"),
                                definition="http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                                           "backport-subscription-events", reads=reads))
