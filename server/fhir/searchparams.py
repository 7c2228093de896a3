"""Search parameter definitions per resource type, with compiled value extractors."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as package_files
from typing import Any

from .elements import ElementModel
from .fhirpath import Extractor, compile_expression
from .types import TypeRegistry, read_profile_text

# Parameters held in columns of the resources table rather than in index tables.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})


def param_key(resource_type: str, code: str) -> int:
    """A stable 63-bit key for (resource type, parameter code), the `sp` column of index tables."""
    digest = hashlib.blake2b(f"{resource_type}.{code}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@cache
def derived_param_key(resource_type: str, code: str, suffix: str) -> int:
    return param_key(resource_type, f"{code}:{suffix}")


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: the parameter it uses and its relative expression."""

    definition: str
    expression: str


@dataclass
class SearchParam:
    """A search parameter as it applies to one resource type."""

    resource_type: str
    code: str
    type: str
    expression: str
    url: str = ""
    targets: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    description: str = ""
    single: bool = False
    key: int = 0
    extractor: Extractor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.key = param_key(self.resource_type, self.code)

    def derived_key(self, suffix: str) -> int:
        """Key for values indexed beside this parameter (`:text`, `:identifier`, `:of-type`)."""
        return derived_param_key(self.resource_type, self.code, suffix)


def split_union(expression: str) -> list[str]:
    """Split a top-level `|` union, leaving parenthesised unions intact."""
    parts, depth, current, quoted = [], 0, [], False
    for char in expression:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "|" and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


RESOLVES_TO = re.compile(r"\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)[\s)]*$")
"""A union branch that keeps only the references resolving to one type (`....where(resolve() is Patient)`)."""


def kept_targets(parts: list[str], declared: tuple[str, ...]) -> tuple[str, ...]:
    """The target types a reference parameter's expression can index: where every branch keeps only
    references resolving to given types (as `patient` does: `Observation.subject.where(resolve() is Patient)`,
    declared for Patient and Group), only those; else the declared ones. A chain through the parameter then
    never searches a type whose references it never indexes."""
    kept = [RESOLVES_TO.search(part) for part in parts]
    if not parts or any(match is None for match in kept):
        return declared
    types = {match.group(1) for match in kept if match is not None}
    narrowed = tuple(t for t in declared if t in types) if declared else tuple(sorted(types))
    return narrowed or declared


def applies_to(part: str, resource_type: str) -> bool:
    """Does one union branch of a multi-type expression start at this resource type?"""
    head = part.lstrip("(").split(".", 1)[0].split(" ", 1)[0]
    return head in (resource_type, "Resource", "DomainResource") or not head[:1].isupper()


class SearchParamRegistry:
    """Every search parameter of every supported type: the R4 ones plus the project's own."""

    def __init__(self, definitions: Iterable[dict[str, Any]], types: TypeRegistry, model: ElementModel) -> None:
        self.types = types
        self.by_type: dict[str, dict[str, SearchParam]] = {name: {} for name in types.supported}
        self.by_url: dict[str, dict[str, Any]] = {}
        self.digest_source: list[str] = []
        for definition in definitions:
            self.add(definition, model)
        self.digest = hashlib.sha256("\n".join(sorted(self.digest_source)).encode()).hexdigest()[:16]

    @classmethod
    def load(cls, types: TypeRegistry, model: ElementModel) -> SearchParamRegistry:
        definitions = json.loads(read_profile_text("r4/search-parameters.json"))
        definitions.extend(project_search_parameters())
        return cls(definitions, types, model)

    def add(self, definition: dict[str, Any], model: ElementModel) -> None:
        expression = definition.get("expression")
        if not expression or definition.get("type") == "special":
            return
        if definition.get("url"):
            self.by_url[definition["url"]] = definition
        bases: list[str] = []
        for base in definition.get("base", []):
            bases.extend(sorted(self.types.supported) if base in ("Resource", "DomainResource") else [base])
        parts = split_union(expression)
        for base in bases:
            if base not in self.by_type:
                continue
            own = [part for part in parts if applies_to(part, base)]
            if not own:
                continue
            own_expression = " | ".join(own)
            param = SearchParam(
                resource_type=base,
                code=definition["code"],
                type=definition["type"],
                expression=own_expression,
                url=definition.get("url", ""),
                targets=kept_targets(own, tuple(definition.get("target", ()))),
                modifiers=tuple(definition.get("modifier", ())),
                comparators=tuple(definition.get("comparator", ())),
                components=tuple(
                    Component(c["definition"], c["expression"]) for c in definition.get("component", ())
                ),
                description=definition.get("description", ""),
            )
            if param.code not in COLUMN_PARAMS:
                param.extractor = compile_expression(own_expression, base, model)
                param.single = single_valued(own_expression, base, model)
            self.by_type[base][param.code] = param
            self.digest_source.append(f"{base}|{param.code}|{param.type}|{own_expression}")

    def params(self, resource_type: str) -> dict[str, SearchParam]:
        return self.by_type.get(resource_type, {})

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.by_type.get(resource_type, {}).get(code)

    def component_param(self, param: SearchParam, component: Component) -> SearchParam | None:
        """The parameter a composite component refers to (by canonical URL)."""
        definition = self.by_url.get(component.definition)
        if definition is None:
            return None
        return self.get(param.resource_type, definition["code"])

    def indexed(self, resource_type: str) -> list[SearchParam]:
        """Parameters whose values go into index tables on write."""
        return [p for p in self.params(resource_type).values() if p.extractor is not None]


MULTI_ROW_TYPES = frozenset({"CodeableConcept", "HumanName", "Address"})
"""Types one value of which gives several index rows (codings, name parts, address lines)."""
FILTERS = re.compile(r"\.(as|ofType|where)\((?:[^()]|\([^()]*\))*\)|\s+as\s+[A-Za-z]+|[()]")


def single_valued(expression: str, root_type: str, model: ElementModel) -> bool:
    """Whether an expression gives at most one value per resource (all its branches name one
    non-repeating element, choice types aside), which lets sorting join its index row directly."""
    paths = {FILTERS.sub("", part).strip() for part in split_union(expression)}
    if len(paths) != 1:
        return False
    steps = paths.pop().split(".")
    if steps[0] not in (root_type, "Resource", "DomainResource") or len(steps) < 2:
        return False
    owner = root_type
    for name in steps[1:]:
        element = model.element(owner, name)
        if element is None or element.many or MULTI_ROW_TYPES.intersection(element.types):
            return False
        owner = element.ref or (element.types[0] if element.types else "")
    return True


def project_search_parameters() -> list[dict[str, Any]]:
    """The project's own SearchParameter resources from profiles/searchparameters/ (if any)."""
    folder = package_files.files("profiles").joinpath("searchparameters")
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            found.append(json.loads(entry.read_text(encoding="utf-8")))
    return found
