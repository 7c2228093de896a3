"""Compiling a StructureDefinition snapshot into the rule tree the checker walks.

Only what the profile adds to base R4 is compiled (the elements its differential names, and the path
down to them): base R4 structure, cardinality and required bindings are already checked by the R4B
model and the binding checker. Constraints are compiled when the profile itself introduced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fhirpath import Invariant, compile_invariant
from .terminology import CompiledValueSet, Terminology

Json = dict[str, Any]
CORE = "http://hl7.org/fhir/StructureDefinition/"
CODED_TYPES = frozenset({"code", "Coding", "CodeableConcept"})


@dataclass
class Binding:
    """A required or extensible binding with its compiled value set."""

    strength: str
    url: str
    value_set: CompiledValueSet


@dataclass
class Rule:
    """One element of a profile: what to check on each of its values, and its children."""

    element_id: str
    name: str
    choice: bool = False
    types: tuple[str, ...] = ()
    keys: tuple[tuple[str, str, str], ...] = ()  # (JSON key, type, FHIRPath fragment) it may appear under
    min: int = 0
    max: int | None = None
    check_cardinality: bool = False
    restricted_types: bool = False
    fixed: Any = None
    fixed_kind: str = ""
    binding: Binding | None = None
    invariants: tuple[Invariant, ...] = ()
    targets: frozenset[str] | None = None
    children: list[Rule] = field(default_factory=list)
    slicing: Slicing | None = None
    extension: Rule | None = None  # the root rule of a bundled extension this slice's type names
    active: bool = False  # whether there is anything to check on each value (set by `finish`)

    def finish(self) -> Rule:
        """Settle `active` for this rule and those below it (once the tree is complete)."""
        for child in self.children:
            child.finish()
        for chosen in self.slicing.slices if self.slicing is not None else ():
            chosen.rule.finish()
        self.active = bool(self.fixed_kind or self.binding or self.invariants or self.targets or self.children
                           or self.extension)
        return self


@dataclass
class Slice:
    name: str
    value: str
    rule: Rule


@dataclass
class Slicing:
    """Slicing by the value of one child (`system` of identifiers, `url` of extensions)."""

    path: str
    closed: bool
    slices: list[Slice]
    by_value: dict[str, Slice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_value = {s.value: s for s in self.slices}


def parent_of(element_id: str) -> str:
    return element_id.rsplit(".", 1)[0] if "." in element_id else ""


def last_name(element_id: str) -> str:
    """`Patient.identifier:nhsNumber` -> `identifier`; `Observation.value[x]` -> `value`."""
    last = element_id.rsplit(".", 1)[-1].split(":", 1)[0]
    return last[:-3] if last.endswith("[x]") else last


def type_codes(element: Json) -> tuple[str, ...]:
    codes = []
    for entry in element.get("type", []):
        code = entry.get("code", "")
        if code.startswith("http://hl7.org/fhirpath/System."):
            code = "string"
        codes.append(code)
    return tuple(codes)


def json_keys(name: str, choice: bool, types: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    if not choice:
        return ((name, types[0] if types else "Element", name),)
    return tuple((name + t[:1].upper() + t[1:], t, f"{name}.ofType({t})") for t in types)


class ProfileCompiler:
    """Turns StructureDefinitions into rule trees; bundled extension definitions are compiled on demand."""

    def __init__(self, definitions: dict[str, Json], terminology: Terminology, native_fhirpath: bool = True) -> None:
        self.definitions = definitions
        self.terminology = terminology
        self.native = native_fhirpath
        self.compiled: dict[str, Rule] = {}

    def rule_for(self, url: str) -> Rule:
        if url not in self.compiled:
            self.compiled[url] = self.compile(self.definitions[url])
        return self.compiled[url]

    def compile(self, definition: Json) -> Rule:
        url = definition["url"]
        label = f"{definition['id']} " if definition.get("type") == "Extension" else ""
        snapshot = {e["id"]: e for e in definition["snapshot"]["element"]}
        order = [e["id"] for e in definition["snapshot"]["element"]]
        wanted = {e["id"] for e in definition["differential"]["element"]}
        needed = set(wanted)
        for element_id in wanted:
            while element_id:
                needed.add(element_id)
                if ":" in element_id.rsplit(".", 1)[-1]:
                    needed.add(element_id.rsplit(":", 1)[0])
                element_id = parent_of(element_id)
        kids: dict[str, list[str]] = {}
        for element_id in order:
            if element_id in needed and element_id != order[0]:
                kids.setdefault(parent_of(element_id), []).append(element_id)
        return self.build(order[0], snapshot, kids, wanted, url, label).finish()

    def build(self, element_id: str, snapshot: dict[str, Json], kids: dict[str, list[str]], wanted: set[str],
              url: str, label: str) -> Rule:
        element = snapshot[element_id]
        types = type_codes(element)
        name = last_name(element_id)
        choice = element_id.rsplit(".", 1)[-1].split(":", 1)[0].endswith("[x]")
        rule = Rule(label + element_id, name, choice, types, json_keys(name, choice, types))
        if element_id in wanted:
            self.constrain(rule, element, url)
        child_ids = kids.get(element_id, [])
        plain = [c for c in child_ids if ":" not in c.rsplit(".", 1)[-1]]
        for child_id in plain:
            child = self.build(child_id, snapshot, kids, wanted, url, label)
            slice_ids = [c for c in child_ids if c.rsplit(".", 1)[-1].startswith(child.name + ":")]
            slicing = snapshot[child_id].get("slicing")
            if slicing and slice_ids:
                child.slicing = self.slicing(slicing, slice_ids, snapshot, kids, wanted, url, label)
            rule.children.append(child)
        return rule

    def constrain(self, rule: Rule, element: Json, url: str) -> None:
        rule.min = int(element.get("min", 0))
        maximum = element.get("max", "*")
        rule.max = None if maximum == "*" else int(maximum)
        base = element.get("base", {})
        rule.check_cardinality = (rule.min != int(base.get("min", 0)) or maximum != base.get("max", "*")
                                  or "sliceName" in element)
        rule.restricted_types = rule.choice and "type" in element
        for key, value in element.items():
            if key.startswith("fixed") or key.startswith("pattern"):
                rule.fixed_kind = "fixed" if key.startswith("fixed") else "pattern"
                rule.fixed = value
        binding = element.get("binding")
        if binding and binding.get("strength") in ("required", "extensible") and binding.get("valueSet"):
            compiled = self.terminology.value_set(binding["valueSet"])
            if compiled is not None and set(rule.types) & CODED_TYPES:
                rule.binding = Binding(binding["strength"], binding["valueSet"].split("|", 1)[0], compiled)
        rule.invariants = tuple(
            compile_invariant(c["key"], c.get("human", ""), c["expression"], c.get("severity", "error"),
                              element["path"], self.native)
            for c in element.get("constraint", []) if c.get("source") == url and c.get("expression")
        )
        targets = {t.rsplit("/", 1)[-1] for entry in element.get("type", []) if entry.get("code") == "Reference"
                   for t in entry.get("targetProfile", []) if t.startswith(CORE)}
        if targets and "Resource" not in targets:
            rule.targets = frozenset(targets)
        for entry in element.get("type", []):
            for profile in entry.get("profile", []):
                if entry.get("code") == "Extension" and profile in self.definitions:
                    rule.extension = self.rule_for(profile)

    def slicing(self, slicing: Json, slice_ids: list[str], snapshot: dict[str, Json], kids: dict[str, list[str]],
                wanted: set[str], url: str, label: str) -> Slicing:
        discriminators = slicing.get("discriminator", [])
        if len(discriminators) != 1 or discriminators[0].get("type") != "value" \
                or discriminators[0].get("path") not in ("system", "url"):
            raise ValueError(f"{url}: only slicing by the value of `system` or `url` is supported")
        path = discriminators[0]["path"]
        slices = []
        for slice_id in slice_ids:
            rule = self.build(slice_id, snapshot, kids, wanted, url, label)
            slices.append(Slice(snapshot[slice_id]["sliceName"], self.slice_value(slice_id, path, snapshot), rule))
        return Slicing(path, slicing.get("rules") == "closed", slices)

    @staticmethod
    def slice_value(slice_id: str, path: str, snapshot: dict[str, Json]) -> str:
        """The discriminating value: the fixed `system`/`url` of the slice, or its extension's profile."""
        child = snapshot.get(f"{slice_id}.{path}", {})
        for key, value in child.items():
            if key.startswith("fixed") or key.startswith("pattern"):
                return str(value)
        for entry in snapshot[slice_id].get("type", []):
            for profile in entry.get("profile", []):
                return profile
        raise ValueError(f"slice {slice_id} has no fixed {path}")


def compile_profiles(definitions: list[Json], terminology: Terminology, native_fhirpath: bool = True
                     ) -> dict[str, Rule]:
    """Compile every profile (not extension) definition into its rule tree, by URL."""
    compiler = ProfileCompiler({d["url"]: d for d in definitions}, terminology, native_fhirpath)
    return {d["url"]: compiler.rule_for(d["url"]) for d in definitions if d.get("type") != "Extension"}
