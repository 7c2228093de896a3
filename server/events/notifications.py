"""Notification Bundles (history) led by the SubscriptionStatus Parameters of the backport profile."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from ..fhir.dates import format_instant, now_us

STATUS_PROFILE = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"


@dataclass(frozen=True)
class Event:
    """One numbered event of a subscription; `shown` False when its focus is no longer the owner's to see."""

    number: int
    type: str
    id: str
    version: int
    recorded: int
    shown: bool = True
    body: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}/_history/{self.version}"


def subscription_status(subscription_id: str, topic: str, status: str, kind: str, events_since_start: int,
                        events: list[Event], content: str, error: str | None = None) -> dict[str, Any]:
    """The SubscriptionStatus Parameters (R4 backport) of a notification, $status or $events answer."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"Subscription/{subscription_id}"}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [{"name": "event-number", "valueString": str(event.number)},
                                       {"name": "timestamp", "valueInstant": format_instant(event.recorded)}]
        if content != "empty" and event.shown:
            parts.append({"name": "focus", "valueReference": {"reference": event.reference}})
        parameters.append({"name": "notification-event", "part": parts})
    if error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return {"resourceType": "Parameters", "meta": {"profile": [STATUS_PROFILE]}, "parameter": parameters}


def notification_bundle(base: str, status: dict[str, Any], subscription_id: str, events: list[Event],
                        content: str) -> dict[str, Any]:
    """A history Bundle: the status first, then (id-only, full-resource) an entry per event's focus."""
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": status,
        "request": {"method": "GET", "url": f"Subscription/{subscription_id}/$status"},
        "response": {"status": "200"},
    }]
    if content != "empty":
        for event in events:
            if not event.shown:
                continue
            entry: dict[str, Any] = {"fullUrl": f"{base}/{event.type}/{event.id}",
                                     "request": {"method": "PUT" if event.version > 1 else "POST",
                                                 "url": event.type if event.version == 1 else
                                                 f"{event.type}/{event.id}"},
                                     "response": {"status": "201" if event.version == 1 else "200"}}
            if content == "full-resource" and event.body is not None:
                entry["resource"] = orjson.loads(event.body)
            entries.append(entry)
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "history",
            "timestamp": format_instant(now_us()), "entry": entries}
