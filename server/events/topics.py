"""Subscription topics as data (`profiles/topics/*.json`, SubscriptionTopic resources): what fires them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from ..fhir.profiles import DEFAULT_BASE
from ..fhir.profiles.fhirpath import Invariant, compile_invariant

INTERACTIONS = ("create", "update", "delete")
FILTER_SEARCH = "/StructureDefinition/Extension-SCR-TopicFilterSearch"
"""Extension on canFilterBy: the search parameter (or chain) a filter stands for, when not its own name."""


@dataclass(frozen=True)
class Trigger:
    """A resource trigger: the type, the interactions and the FHIRPath criteria a version must meet."""

    resource_type: str
    interactions: frozenset[str]
    criteria: Invariant | None

    def fires(self, interaction: str, resource: Callable[[], dict[str, Any] | None]) -> bool:
        """Whether a written version fires it (`resource` gives the version, read only for criteria)."""
        if interaction not in self.interactions:
            return False
        if self.criteria is None:
            return True
        version = resource()
        return version is not None and self.criteria.holds(version)


@dataclass(frozen=True)
class TopicFilter:
    """A filter a subscriber may name: its resource type and the search parameter it stands for."""

    resource_type: str
    name: str
    search: str


@dataclass(frozen=True)
class Topic:
    """One SubscriptionTopic: its canonical, triggers and allowed filters, and the resource as loaded."""

    url: str
    name: str
    triggers: tuple[Trigger, ...]
    filters: dict[str, TopicFilter]
    resource: dict[str, Any]

    @property
    def types(self) -> frozenset[str]:
        return frozenset(t.resource_type for t in self.triggers)


@dataclass
class TopicBook:
    """Every topic by canonical, and the topics each resource type may fire."""

    topics: dict[str, Topic] = field(default_factory=dict)
    by_type: dict[str, list[Topic]] = field(default_factory=dict)

    @classmethod
    def load(cls, project_base: str = DEFAULT_BASE, extra_folder: str | Path | None = None) -> TopicBook:
        """The bundled topics (profiles/topics/), then any of `extra_folder` (same canonical: replaced)."""
        texts: list[tuple[str, str]] = []
        bundled = package_files.files("profiles").joinpath("topics")
        for entry in sorted(bundled.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".json"):
                texts.append((f"profiles/topics/{entry.name}", entry.read_text(encoding="utf-8")))
        if extra_folder:
            texts.extend((str(p), p.read_text(encoding="utf-8")) for p in sorted(Path(extra_folder).glob("*.json")))
        book = cls()
        for origin, text in texts:
            topic = parse_topic(json.loads(text.replace(DEFAULT_BASE, project_base.rstrip("/"))), origin)
            book.topics[topic.url] = topic
        for topic in book.topics.values():
            for resource_type in topic.types:
                book.by_type.setdefault(resource_type, []).append(topic)
        return book

    def fired(self, resource_type: str, interaction: str,
              resource: Callable[[], dict[str, Any] | None]) -> list[str]:
        """The canonicals of the topics a written version fires (`resource` gives the version when a trigger's
        criteria need it)."""
        return [topic.url for topic in self.by_type.get(resource_type, ())
                if any(t.resource_type == resource_type and t.fires(interaction, resource) for t in topic.triggers)]


def type_name(value: str) -> str:
    """`CarePlan` from `CarePlan` or `http://hl7.org/fhir/StructureDefinition/CarePlan`."""
    return value.rstrip("/").rsplit("/", 1)[-1]


def parse_topic(data: dict[str, Any], origin: str) -> Topic:
    if data.get("resourceType") != "SubscriptionTopic" or not data.get("url"):
        raise ValueError(f"{origin}: not a SubscriptionTopic with a url")
    triggers = []
    for number, trigger in enumerate(data.get("resourceTrigger") or []):
        resource_type = type_name(str(trigger.get("resource") or ""))
        interactions = frozenset(trigger.get("supportedInteraction") or INTERACTIONS)
        if not resource_type or not interactions <= set(INTERACTIONS):
            raise ValueError(f"{origin}: resourceTrigger[{number}] needs a resource and create/update/delete")
        expression = trigger.get("fhirPathCriteria")
        criteria = compile_invariant(f"{data['url']}#{number}", "", expression, "error", resource_type) \
            if expression else None
        triggers.append(Trigger(resource_type, interactions, criteria))
    if not triggers:
        raise ValueError(f"{origin}: a topic needs at least one resourceTrigger")
    filters = {}
    for entry in data.get("canFilterBy") or []:
        name = str(entry.get("filterParameter") or "")
        search = next((str(e.get("valueString")) for e in entry.get("extension") or []
                       if str(e.get("url", "")).endswith(FILTER_SEARCH)), name)
        if name:
            filters[name] = TopicFilter(type_name(str(entry.get("resource") or triggers[0].resource_type)), name,
                                        search)
    name = str(data.get("id") or data["url"].rsplit("/", 1)[-1])
    return Topic(data["url"], name, tuple(triggers), filters, data)
