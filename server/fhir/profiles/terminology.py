"""The bundled terminology: code systems, value sets (compiled for membership), concept maps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .codes import FORM_CHECKS, FORM_NAMES

Json = dict[str, Any]
ExternalValueSet = Callable[[str], dict[str, frozenset[str]] | None]


class NotEnumerable(ValueError):
    """A value set that includes a whole external code system cannot be expanded."""


@dataclass(frozen=True)
class Concept:
    """One concept of a bundled code system."""

    system: str
    code: str
    display: str
    definition: str = ""
    designations: tuple[Json, ...] = ()


@dataclass(frozen=True)
class CodeSystemInfo:
    """A bundled code system and its concepts by code."""

    url: str
    name: str
    version: str
    content: str
    concepts: dict[str, Concept]


@dataclass(frozen=True)
class CompiledValueSet:
    """Membership of a value set: enumerated codes per system, and whole systems checked for form only."""

    url: str
    enumerated: dict[str, frozenset[str]]
    formed: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    open_systems: frozenset[str] = frozenset()

    def covers(self, system: str) -> bool:
        """Whether codes of this system can be members (the system is included at all)."""
        return system in self.enumerated or system in self.formed or system in self.open_systems

    def contains(self, system: str | None, code: str) -> bool:
        if system is None:
            return self.contains_code(code)
        codes = self.enumerated.get(system)
        if codes is not None and code in codes:
            return True
        check = self.formed.get(system)
        if check is not None:
            return check(code)
        return system in self.open_systems

    def contains_code(self, code: str) -> bool:
        """For a `code` element (no system): the code is one of the value set's codes in any system."""
        if any(code in codes for codes in self.enumerated.values()):
            return True
        return any(check(code) for check in self.formed.values()) or bool(self.open_systems)

    @property
    def enumerable(self) -> bool:
        return not self.formed and not self.open_systems


@dataclass(frozen=True)
class Translation:
    """One target of a ConceptMap translation."""

    equivalence: str
    system: str
    code: str
    display: str
    source: str


class Terminology:
    """Bundled CodeSystems, ValueSets and ConceptMaps, plus the enumerable R4 value sets as a fallback."""

    def __init__(self, code_systems: list[Json], value_sets: list[Json], concept_maps: list[Json],
                 external: ExternalValueSet | None = None) -> None:
        self.code_systems = {cs["url"]: code_system_info(cs) for cs in code_systems}
        self.value_set_resources = {vs["url"]: vs for vs in value_sets}
        self.concept_maps = {cm["url"]: cm for cm in concept_maps}
        self.external = external
        self._compiled: dict[str, CompiledValueSet | None] = {}
        for url in self.value_set_resources:  # compiled up front: lookups while serving only read
            self.value_set(url)

    # ------------------------------------------------------------------ value sets

    def value_set(self, url: str) -> CompiledValueSet | None:
        """The compiled value set for a canonical (a `|version` suffix is ignored), or None if unknown."""
        url = url.split("|", 1)[0]
        if url not in self._compiled:
            self._compiled[url] = self._compile(url, frozenset())
        return self._compiled[url]

    def _compile(self, url: str, visiting: frozenset[str]) -> CompiledValueSet | None:
        if url in self._compiled:
            return self._compiled[url]
        resource = self.value_set_resources.get(url)
        if resource is None:
            systems = self.external(url) if self.external is not None else None
            return CompiledValueSet(url, dict(systems)) if systems is not None else None
        enumerated: dict[str, set[str]] = {}
        formed: dict[str, Callable[[str], bool]] = {}
        open_systems: set[str] = set()
        compose = resource.get("compose", {})
        for include in compose.get("include", []):
            self._include(include, enumerated, formed, open_systems, visiting | {url})
        for exclude in compose.get("exclude", []):
            system = exclude.get("system")
            if system in enumerated:
                enumerated[system] -= {c["code"] for c in exclude.get("concept", [])}
        return CompiledValueSet(url, {s: frozenset(c) for s, c in enumerated.items()}, formed,
                                frozenset(open_systems))

    def _include(self, include: Json, enumerated: dict[str, set[str]], formed: dict[str, Callable[[str], bool]],
                 open_systems: set[str], visiting: frozenset[str]) -> None:
        for nested_url in include.get("valueSet", []):
            nested_url = nested_url.split("|", 1)[0]
            nested = None if nested_url in visiting else self._compile(nested_url, visiting)
            if nested is not None:
                for system, codes in nested.enumerated.items():
                    enumerated.setdefault(system, set()).update(codes)
                formed.update(nested.formed)
                open_systems.update(nested.open_systems)
        system = include.get("system")
        if system is None:
            return
        if "concept" in include:
            enumerated.setdefault(system, set()).update(c["code"] for c in include["concept"])
        elif system in self.code_systems and not include.get("filter"):
            enumerated.setdefault(system, set()).update(self.code_systems[system].concepts)
        elif system in FORM_CHECKS:
            formed[system] = FORM_CHECKS[system]
        else:
            open_systems.add(system)

    def expand(self, url: str, text_filter: str | None = None) -> list[Concept]:
        """The concepts of an enumerable value set, optionally those whose code or display holds the filter."""
        compiled = self.value_set(url)
        if compiled is None:
            raise KeyError(url)
        if not compiled.enumerable:
            systems = sorted(set(compiled.formed) | compiled.open_systems)
            raise NotEnumerable(f"Value set {url} includes whole code systems ({', '.join(systems)}) "
                                "that are not bundled, so it cannot be expanded")
        wanted = (text_filter or "").casefold()
        out: list[Concept] = []
        for system, codes in compiled.enumerated.items():
            info = self.code_systems.get(system)
            ordered = [c for c in info.concepts if c in codes] if info is not None else []
            ordered += sorted(codes.difference(ordered))  # codes listed in the value set but not in a bundled system
            for code in ordered:
                concept = self.concept(system, code) or Concept(system, code, "")
                if not wanted or wanted in concept.code.casefold() or wanted in concept.display.casefold():
                    out.append(concept)
        return out

    # ------------------------------------------------------------------ code systems

    def concept(self, system: str, code: str) -> Concept | None:
        info = self.code_systems.get(system)
        return info.concepts.get(code) if info is not None else None

    def validate_code(self, url: str, system: str | None, code: str, display: str | None = None
                      ) -> tuple[bool, str, Concept | None]:
        """(result, message, concept) for a code against a value set (KeyError if the value set is unknown)."""
        compiled = self.value_set(url)
        if compiled is None:
            raise KeyError(url)
        concept = self.concept(system, code) if system else None
        if not compiled.contains(system, code):
            where = f"{system}|{code}" if system else code
            return False, f"The code '{where}' is not in the value set {url}", concept
        if concept is None and system in compiled.formed:
            form = FORM_NAMES.get(system, "a code of that system")
            return True, f"The code '{code}' has the form of {form}; not checked against a release", None
        if display and concept is not None and concept.display and display != concept.display:
            message = f"The display '{display}' is not the display of {system}|{code} ('{concept.display}')"
            return False, message, concept
        return True, "", concept

    # ------------------------------------------------------------------ concept maps

    def find_maps(self, url: str | None, source: str | None, target: str | None) -> list[Json]:
        """Concept maps by canonical, or by source and/or target value set (or code system) canonical."""
        if url:
            found = self.concept_maps.get(url.split("|", 1)[0])
            return [found] if found is not None else []
        maps = []
        for concept_map in self.concept_maps.values():
            sources = {concept_map.get("sourceUri"), concept_map.get("sourceCanonical")}
            sources |= {group.get("source") for group in concept_map.get("group", [])}
            targets = {concept_map.get("targetUri"), concept_map.get("targetCanonical")}
            targets |= {group.get("target") for group in concept_map.get("group", [])}
            if (source is None or source in sources) and (target is None or target in targets):
                maps.append(concept_map)
        return maps

    def translate(self, maps: list[Json], system: str, code: str, target_system: str | None = None
                  ) -> list[Translation]:
        """Every target of the code in the given maps (unmapped codes give no translation)."""
        found: list[Translation] = []
        for concept_map in maps:
            for group in concept_map.get("group", []):
                if group.get("source") != system:
                    continue
                if target_system is not None and group.get("target") != target_system:
                    continue
                for element in group.get("element", []):
                    if element.get("code") != code:
                        continue
                    for target in element.get("target", []):
                        if target.get("equivalence") == "unmatched" or "code" not in target:
                            continue
                        target_concept = self.concept(group.get("target", ""), target["code"])
                        found.append(Translation(
                            target.get("equivalence", "equivalent"), group.get("target", ""), target["code"],
                            target.get("display") or (target_concept.display if target_concept else ""),
                            concept_map["url"]))
        return found


def code_system_info(resource: Json) -> CodeSystemInfo:
    """Concepts of a CodeSystem (nested concepts flattened)."""
    concepts: dict[str, Concept] = {}
    system = resource["url"]

    def visit(items: list[Json]) -> None:
        for item in items:
            concepts[item["code"]] = Concept(system, item["code"], item.get("display", ""),
                                             item.get("definition", ""), tuple(item.get("designation", [])))
            visit(item.get("concept", []))

    visit(resource.get("concept", []))
    return CodeSystemInfo(system, resource.get("name", ""), resource.get("version", ""),
                          resource.get("content", ""), concepts)
