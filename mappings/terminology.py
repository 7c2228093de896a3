"""Code lists and ConceptMaps the mappings use: the record's terminology plus the mappings' own ConceptMaps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

DEFAULT_BASE = "https://sharedcare.example.org/fhir"
PROFILE_FOLDER = ("profiles", "terminology")
MAPPING_FOLDER = ("mappings", "conceptmaps")


@dataclass(frozen=True, slots=True)
class Coding:
    """A translated code: system, code and display (as in a FHIR Coding)."""

    system: str
    code: str
    display: str | None = None

    def as_fhir(self) -> dict[str, str]:
        found = {"system": self.system, "code": self.code}
        if self.display:
            found["display"] = self.display
        return found


@dataclass
class Terminology:
    """CodeSystems, ValueSets and ConceptMaps by name (the last segment of their canonical URL)."""

    base: str = DEFAULT_BASE
    code_systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    value_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    concept_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    _maps: dict[str, dict[str, list[Coding]]] = field(default_factory=dict)
    _codes: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, base: str = DEFAULT_BASE) -> Terminology:
        """Read every bundled terminology file, rewriting the default project base to ``base``."""
        found = cls(base=base.rstrip("/"))
        for package, folder in (PROFILE_FOLDER, MAPPING_FOLDER):
            directory = resources.files(package).joinpath(folder)
            if not directory.is_dir():
                continue
            for entry in sorted(directory.iterdir(), key=lambda item: item.name):
                if entry.name.endswith(".json"):
                    text = entry.read_text(encoding="utf-8")
                    if found.base != DEFAULT_BASE:
                        text = text.replace(DEFAULT_BASE, found.base)
                    found.add(json.loads(text))
        return found

    def add(self, resource: dict[str, Any]) -> None:
        kind = resource.get("resourceType")
        name = str(resource.get("url", "")).rsplit("/", 1)[-1]
        target = {"CodeSystem": self.code_systems, "ValueSet": self.value_sets,
                  "ConceptMap": self.concept_maps}.get(str(kind))
        if target is not None and name:
            target[name] = resource

    def system_url(self, name: str) -> str:
        if name not in self.code_systems:
            raise KeyError(f"no CodeSystem named {name!r} in the terminology")
        return str(self.code_systems[name]["url"])

    def codes(self, value_set: str) -> frozenset[str]:
        """Every code a ValueSet holds (whole code systems or listed concepts of the bundled ones)."""
        if value_set in self._codes:
            return self._codes[value_set]
        if value_set not in self.value_sets:
            raise KeyError(f"no ValueSet named {value_set!r} in the terminology")
        by_url = {str(cs["url"]): cs for cs in self.code_systems.values()}
        codes: set[str] = set()
        for include in self.value_sets[value_set].get("compose", {}).get("include", []):
            if include.get("concept"):
                codes.update(str(c["code"]) for c in include["concept"])
                continue
            system = by_url.get(str(include.get("system")))
            if system is None:
                raise ValueError(f"ValueSet {value_set} draws on {include.get('system')}, which cannot be enumerated")
            codes.update(_all_codes(system.get("concept", [])))
        self._codes[value_set] = frozen = frozenset(codes)
        return frozen

    def translate(self, concept_map: str, code: str) -> Coding | None:
        """The first target of ``code`` in a ConceptMap (None when the map leaves it unmapped)."""
        table = self._maps.get(concept_map)
        if table is None:
            table = self._compile(concept_map)
        targets = table.get(code)
        return targets[0] if targets else None

    def _compile(self, concept_map: str) -> dict[str, list[Coding]]:
        if concept_map not in self.concept_maps:
            raise KeyError(f"no ConceptMap named {concept_map!r} in the terminology")
        table: dict[str, list[Coding]] = {}
        for group in self.concept_maps[concept_map].get("group", []):
            system = str(group.get("target", ""))
            for element in group.get("element", []):
                for target in element.get("target", []):
                    if target.get("equivalence") in ("unmatched", "disjoint") or "code" not in target:
                        continue
                    table.setdefault(str(element["code"]), []).append(
                        Coding(system, str(target["code"]), target.get("display")))
        self._maps[concept_map] = table
        return table


def _all_codes(concepts: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for concept in concepts:
        found.add(str(concept["code"]))
        found.update(_all_codes(concept.get("concept", [])))
    return found
