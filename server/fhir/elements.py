"""The R4 element tree (from the vendored definitions): element types, cardinality, choices, summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from .types import read_profile_text

PRIMITIVES = frozenset({
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant",
    "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid",
    "xhtml",
})


@dataclass(frozen=True)
class Element:
    """One child element of a type or backbone element."""

    name: str
    types: tuple[str, ...]
    choice: bool
    many: bool
    min: int
    summary: bool
    modifier: bool
    ref: str | None

    def type_for_key(self, key: str) -> str | None:
        """The type a JSON key carries (`valueQuantity` -> Quantity); None if the key is not this element."""
        if not self.choice:
            return self.ref or (self.types[0] if self.types else None) if key == self.name else None
        suffix = key[len(self.name):]
        for candidate in self.types:
            if candidate[:1].upper() + candidate[1:] == suffix:
                return candidate
        return None

    @cached_property
    def keys(self) -> tuple[tuple[str, str], ...]:
        """Every JSON key this element may appear under, with the type it then holds."""
        if not self.choice:
            return ((self.name, self.ref or (self.types[0] if self.types else "Element")),)
        return tuple((self.name + t[:1].upper() + t[1:], t) for t in self.types)

    def json_keys(self) -> tuple[tuple[str, str], ...]:
        return self.keys


class ElementModel:
    """Lookups over the element tables of every resource and complex datatype."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.resource_types: frozenset[str] = frozenset(data["resources"])
        self.tables: dict[str, dict[str, Element]] = {
            owner: {name: make_element(name, info) for name, info in children.items()}
            for owner, children in data["types"].items()
        }
        self.key_index: dict[str, dict[str, tuple[Element, str]]] = {}

    @classmethod
    def load(cls) -> ElementModel:
        return shared_model()

    def children(self, owner: str) -> dict[str, Element]:
        return self.tables.get(owner, {})

    def element(self, owner: str, name: str) -> Element | None:
        return self.tables.get(owner, {}).get(name)

    def by_json_key(self, owner: str) -> dict[str, tuple[Element, str]]:
        """JSON key -> (element, type) for an owner, choice keys expanded."""
        index = self.key_index.get(owner)
        if index is None:
            index = {}
            for element in self.children(owner).values():
                for key, type_name in element.json_keys():
                    index[key] = (element, type_name)
            self.key_index[owner] = index
        return index


def make_element(name: str, info: dict[str, Any]) -> Element:
    return Element(
        name=name,
        types=tuple(info.get("types", ())),
        choice=bool(info.get("choice")),
        many=bool(info.get("many")),
        min=int(info.get("min", 0)),
        summary=bool(info.get("summary")),
        modifier=bool(info.get("modifier")),
        ref=info.get("ref"),
    )


@cache
def shared_model() -> ElementModel:
    """The element model, read once per process (immutable once built, apart from its key cache)."""
    return ElementModel(json.loads(read_profile_text("r4/elements.json")))
