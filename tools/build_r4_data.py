"""Generate the vendored FHIR R4 data files in profiles/r4/ from the shared R4 definitions.

Run by hand at build time (the server never reads the shared folder):

    .venv/bin/python tools/build_r4_data.py --shared /work/shared

Inputs (under --shared):
    fhir-r4/hl7.fhir.r4.examples-4.0.1.tgz          StructureDefinitions, ValueSets, CodeSystems
    fhir-r4/search-parameters.json                    every R4 SearchParameter
    fhir-r4/compartments/CompartmentDefinition-patient.json

Outputs (under profiles/r4/, deterministic, one top-level item a line):
    resource-types.json      {"supported": [...], "refused": [...]}
    search-parameters.json   R4 SearchParameters trimmed to what a server needs
    compartment-patient.json the Patient compartment, limited to supported types
    bindings.json            required bindings with enumerable value sets, for server/fhir/bindings.py
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fhir.resources import R4B

PACKAGE = "fhir-r4/hl7.fhir.r4.examples-4.0.1.tgz"
SEARCH_PARAMETERS = "fhir-r4/search-parameters.json"
PATIENT_COMPARTMENT = "fhir-r4/compartments/CompartmentDefinition-patient.json"
FHIR_VERSION = "4.0.1"
ABSTRACT_BASES = ("Resource", "DomainResource")
BINDABLE_TYPES = ("code", "Coding", "CodeableConcept")
INLINE_TYPES = ("BackboneElement", "Element")
SP_FIELDS = (
    "url",
    "id",
    "name",
    "code",
    "base",
    "type",
    "expression",
    "target",
    "modifier",
    "comparator",
    "multipleOr",
    "multipleAnd",
    "chain",
)

Json = dict[str, Any]
Expansion = dict[str, set[str]]  # system -> codes


class NotEnumerable(Exception):
    """A value set whose codes cannot be listed from the package alone."""


# ---------------------------------------------------------------------------
# Reading the package


def read_package(path: Path) -> dict[str, list[Json]]:
    """Return the package's definitional resources grouped by resourceType."""
    wanted = {"StructureDefinition", "ValueSet", "CodeSystem"}
    found: dict[str, list[Json]] = {name: [] for name in wanted}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not member.isfile() or not name.endswith(".json"):
                continue
            if name.split("-", 1)[0] not in wanted:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            resource = json.load(handle)
            if resource.get("resourceType") in wanted:
                found[resource["resourceType"]].append(resource)
    for group in found.values():
        group.sort(key=lambda r: (r.get("url", ""), r.get("id", "")))
    return found


def r4b_models(type_name: str) -> bool:
    """True when fhir.resources.R4B has a model class for the type."""
    try:
        R4B.get_fhir_model_class(type_name)
    except (ValueError, KeyError, AttributeError, ImportError):
        return False
    return True


# ---------------------------------------------------------------------------
# 1. resource-types.json


def concrete_resource_types(structures: Iterable[Json]) -> list[str]:
    """Every concrete R4 resource type (kind=resource, specialization, not abstract)."""
    return sorted(
        sd["type"]
        for sd in structures
        if sd.get("kind") == "resource" and sd.get("derivation") == "specialization" and not sd.get("abstract")
    )


def build_resource_types(structures: Iterable[Json]) -> Json:
    """Split the R4 resource types into those R4B models (supported) and the rest."""
    supported, refused = [], []
    for name in concrete_resource_types(structures):
        (supported if r4b_models(name) else refused).append(name)
    return {"supported": supported, "refused": refused}


# ---------------------------------------------------------------------------
# 2. search-parameters.json


def first_sentence(text: str) -> str:
    """The first line of a text, cut at its first full stop."""
    line = text.strip().splitlines()[0].strip()
    match = re.match(r"(.+?\.)(\s|$)", line)
    return match.group(1) if match else line


def short_description(text: str | None, supported: set[str]) -> str | None:
    """First sentence; for shared parameters, the first sentence for each supported type.

    Shared parameters read "Multiple Resources: * [Type](type.html): text ...".
    """
    if not text:
        return None
    bullets = re.findall(r"^\* \[(\w+)\]\([^)]*\): (.*)$", text, flags=re.MULTILINE)
    if not text.startswith("Multiple Resources:") or not bullets:
        return first_sentence(text)
    parts = [f"{name}: {first_sentence(body)}" for name, body in bullets if name in supported]
    return "Multiple Resources: " + "; ".join(parts)


def trim_search_parameter(sp: Json, supported: set[str]) -> Json:
    """Keep only the fields a server needs, with base/target limited to supported types."""
    out = {field: sp[field] for field in SP_FIELDS if field in sp}
    out["base"] = [b for b in sp["base"] if b in supported or b in ABSTRACT_BASES]
    if "target" in sp:
        out["target"] = [t for t in sp["target"] if t in supported or t in ABSTRACT_BASES]
    if "component" in sp:
        out["component"] = [{"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]]
    description = short_description(sp.get("description"), supported)
    if description:
        out["description"] = description
    return out


def build_search_parameters(bundle: Json, supported: set[str]) -> tuple[list[Json], list[str], list[str]]:
    """Return (kept parameters, ids dropped for no expression, ids dropped for no supported base)."""
    kept: list[Json] = []
    no_expression: list[str] = []
    no_base: list[str] = []
    for entry in bundle["entry"]:
        sp = entry["resource"]
        if not any(b in supported or b in ABSTRACT_BASES for b in sp["base"]):
            no_base.append(sp["id"])
        elif not sp.get("expression"):
            no_expression.append(f"{sp['id']} ({sp['code']})")
        else:
            kept.append(trim_search_parameter(sp, supported))
    kept.sort(key=lambda sp: sp["id"])
    return kept, sorted(no_expression), sorted(no_base)


# ---------------------------------------------------------------------------
# 3. compartment-patient.json


def build_compartment(compartment: Json, supported: set[str]) -> Json:
    """The compartment definition with its resource entries limited to supported types."""
    out = dict(compartment)
    out["resource"] = [r for r in compartment["resource"] if r["code"] in supported]
    return out


# ---------------------------------------------------------------------------
# 4a. Value set expansion (enumerable value sets only)


class CodeSystemIndex:
    """Code lists and is-a hierarchies of the complete code systems in the package."""

    def __init__(self, code_systems: Iterable[Json]) -> None:
        self.by_url = {cs["url"]: cs for cs in code_systems if "url" in cs}
        self._cache: dict[str, tuple[list[str], dict[str, set[str]], dict[str, Json]]] = {}

    def _complete(self, system: str) -> Json:
        cs = self.by_url.get(system)
        if cs is None:
            raise NotEnumerable(f"code system {system} is not in the package")
        if cs.get("content") != "complete":
            raise NotEnumerable(f"code system {system} has content={cs.get('content')}")
        return cs

    def _index(self, system: str) -> tuple[list[str], dict[str, set[str]], dict[str, Json]]:
        """(all codes, direct children per code, concept per code) for a complete system."""
        if system not in self._cache:
            cs = self._complete(system)
            codes: list[str] = []
            children: dict[str, set[str]] = {}
            concepts: dict[str, Json] = {}
            for parent, concept in walk_concepts(cs.get("concept", []), None):
                code = concept["code"]
                codes.append(code)
                concepts[code] = concept
                children.setdefault(code, set())
                if parent is not None:
                    children.setdefault(parent, set()).add(code)
                for prop in concept.get("property", []):
                    if prop.get("code") == "child" and "valueCode" in prop:
                        children[code].add(prop["valueCode"])
                    elif prop.get("code") in ("parent", "subsumedBy") and "valueCode" in prop:
                        children.setdefault(prop["valueCode"], set()).add(code)
            self._cache[system] = (codes, children, concepts)
        return self._cache[system]

    def all_codes(self, system: str) -> set[str]:
        return set(self._index(system)[0])

    def descendants(self, system: str, code: str) -> set[str]:
        """Every code below `code` (not including it) in the system's hierarchy."""
        _, children, concepts = self._index(system)
        if code not in concepts:
            raise NotEnumerable(f"code {code} is not in {system}")
        seen: set[str] = set()
        stack = list(children.get(code, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(children.get(current, ()))
        return seen

    def apply_filter(self, system: str, flt: Json) -> set[str]:
        """Codes matching one compose filter, for the hierarchy filters we can compute."""
        prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
        if prop == "concept" and op == "is-a":
            return self.descendants(system, value) | {value}
        if prop == "concept" and op == "descendent-of":
            return self.descendants(system, value)
        if prop == "concept" and op == "is-not-a":
            return self.all_codes(system) - self.descendants(system, value) - {value}
        if prop == "concept" and op == "=":
            self.descendants(system, value)  # raises when the code is unknown
            return {value}
        raise NotEnumerable(f"filter {prop} {op} {value} on {system} is not supported")


def walk_concepts(concepts: list[Json], parent: str | None) -> Iterator[tuple[str | None, Json]]:
    """Yield (parent code, concept) for every concept, nested ones included."""
    for concept in concepts:
        yield parent, concept
        yield from walk_concepts(concept.get("concept", []), concept["code"])


def strip_version(url: str) -> str:
    return url.split("|", 1)[0]


class ValueSetExpander:
    """Expand ValueSet.compose into {system: codes}, raising NotEnumerable when impossible."""

    def __init__(self, value_sets: Iterable[Json], code_systems: CodeSystemIndex) -> None:
        self.by_url = {vs["url"]: vs for vs in value_sets if "url" in vs}
        self.code_systems = code_systems
        self._done: dict[str, Expansion | NotEnumerable] = {}
        self._active: set[str] = set()

    def expand(self, url: str) -> Expansion:
        key = strip_version(url)
        if key not in self._done:
            if key in self._active:
                raise NotEnumerable(f"value set {key} includes itself")
            self._active.add(key)
            try:
                self._done[key] = self._expand(key)
            except NotEnumerable as problem:
                self._done[key] = problem
            finally:
                self._active.discard(key)
        result = self._done[key]
        if isinstance(result, NotEnumerable):
            raise result
        return result

    def _expand(self, url: str) -> Expansion:
        vs = self.by_url.get(url)
        if vs is None:
            raise NotEnumerable(f"value set {url} is not in the package")
        compose = vs.get("compose")
        if not compose:
            raise NotEnumerable(f"value set {url} has no compose")
        result: Expansion = {}
        for include in compose.get("include", []):
            merge(result, self._part(include))
        for exclude in compose.get("exclude", []):
            for system, codes in self._part(exclude).items():
                if system in result:
                    result[system] -= codes
        return {system: codes for system, codes in result.items() if codes}

    def _part(self, part: Json) -> Expansion:
        """One include/exclude: its system selection intersected with its value sets."""
        selections: list[Expansion] = []
        system = part.get("system")
        if system:
            selections.append({system: self._system_codes(system, part)})
        selections.extend(self.expand(ref) for ref in part.get("valueSet", []))
        if not selections:
            raise NotEnumerable("include/exclude with neither system nor valueSet")
        result = selections[0]
        for other in selections[1:]:
            result = intersect(result, other)
        return result

    def _system_codes(self, system: str, part: Json) -> set[str]:
        if "concept" in part:
            return {c["code"] for c in part["concept"]}
        codes = self.code_systems.all_codes(system)
        for flt in part.get("filter", []):
            codes &= self.code_systems.apply_filter(system, flt)
        return codes


def merge(into: Expansion, other: Expansion) -> None:
    for system, codes in other.items():
        into.setdefault(system, set()).update(codes)


def intersect(left: Expansion, right: Expansion) -> Expansion:
    return {s: left[s] & right[s] for s in left.keys() & right.keys()}


# ---------------------------------------------------------------------------
# 4b. Element tables: where bindings live, keyed by JSON property name


def type_structures(structures: Iterable[Json], supported: set[str]) -> list[Json]:
    """Definitions of supported resource types and of every complex datatype."""
    out = []
    for sd in structures:
        if sd.get("derivation") != "specialization" or sd.get("abstract"):
            continue
        if sd["kind"] == "complex-type" or (sd["kind"] == "resource" and sd["type"] in supported):
            out.append(sd)
    return out


def json_keys(element: Json) -> list[tuple[str, str, str]]:
    """(JSON key, FHIRPath fragment, type code) for each way an element appears in JSON."""
    name = element["path"].rsplit(".", 1)[-1]
    types = [t["code"] for t in element.get("type", [])]
    if name.endswith("[x]"):
        base = name[:-3]
        return [(base + t[0].upper() + t[1:], f"{base}.ofType({t})", t) for t in types]
    return [(name, name, t) for t in types[:1]]


class TableBuilder:
    """Turn snapshots into {table name: {json key: rule}}, pruned to what reaches a binding."""

    def __init__(self, expander: ValueSetExpander) -> None:
        self.expander = expander
        self.tables: dict[str, dict[str, Json]] = {}
        self.enumerable: dict[str, list[str]] = {}  # value set url -> element paths
        self.skipped: dict[str, list[str]] = {}  # reason -> element paths

    def add_structure(self, sd: Json) -> None:
        elements = sd["snapshot"]["element"]
        parents = {e["path"].rsplit(".", 1)[0] for e in elements if "." in e["path"]}
        self.tables.setdefault(sd["type"], {})
        for element in elements:
            path = element["path"]
            if "." not in path:
                continue
            table = self.tables.setdefault(path.rsplit(".", 1)[0], {})
            for key, fragment, rule in self._rules(element, path in parents):
                table[key] = rule if fragment == key else {**rule, "path": fragment}

    def _rules(self, element: Json, has_children: bool) -> Iterator[tuple[str, str, Json]]:
        if "contentReference" in element:
            name = element["path"].rsplit(".", 1)[-1]
            yield name, name, {"type": element["contentReference"].lstrip("#")}
            return
        valueset = self._binding(element)
        for key, fragment, type_code in json_keys(element):
            if type_code in INLINE_TYPES and has_children:
                yield key, fragment, {"type": element["path"]}
            elif type_code in BINDABLE_TYPES and valueset:
                yield key, fragment, {"type": type_code, "valueSet": valueset}
            else:
                yield key, fragment, {"type": type_code}

    def _binding(self, element: Json) -> str | None:
        """The element's required value set URL when it can be enumerated, else None."""
        binding = element.get("binding")
        if not binding or binding.get("strength") != "required":
            return None
        path = element["path"]
        types = {t["code"] for t in element.get("type", [])}
        url = binding.get("valueSet")
        if not url:
            self.skipped.setdefault("required binding without a value set", []).append(path)
            return None
        if not types & set(BINDABLE_TYPES):
            reason = f"bound type {sorted(types)} is not code/Coding/CodeableConcept"
            self.skipped.setdefault(reason, []).append(path)
            return None
        try:
            self.expander.expand(url)
        except NotEnumerable as problem:
            self.skipped.setdefault(f"{strip_version(url)}: {problem}", []).append(path)
            return None
        self.enumerable.setdefault(url, []).append(path)
        return url

    def pruned(self, resource_types: set[str]) -> dict[str, dict[str, Json]]:
        """Drop rules and tables that can never lead to a bound element."""
        live: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, table in self.tables.items():
                if name not in live and any(self._rule_live(r, live, resource_types) for r in table.values()):
                    live.add(name)
                    changed = True
        return {
            name: {k: r for k, r in sorted(table.items()) if self._rule_live(r, live, resource_types)}
            for name, table in sorted(self.tables.items())
            if name in live
        }

    @staticmethod
    def _rule_live(rule: Json, live: set[str], resource_types: set[str]) -> bool:
        if "valueSet" in rule or rule["type"] in live:
            return True
        return rule["type"] == "Resource" and bool(live & resource_types)


def build_bindings(package: dict[str, list[Json]], supported: list[str]) -> tuple[Json, TableBuilder]:
    """The bindings.json document and the builder (for its statistics).

    bindings.json:
        fhirVersion  "4.0.1"
        resources    supported resource types that have a table (the roots a check starts from)
        tables       {name: {JSON key: rule}} for each resource, complex datatype and backbone
                     element (named by its path, e.g. "CarePlan.activity.detail"); a rule is
                     {"type": T, "valueSet"?: canonical, "path"?: FHIRPath fragment}. T is a table
                     name, "Resource" (dispatch on resourceType) or code/Coding/CodeableConcept.
                     "path" is present only when it differs from the key (choice elements:
                     valueQuantity -> "value.ofType(Quantity)"). Only keys that can lead to an
                     enumerable required binding are kept.
        valueSets    {canonical|version: {system: [codes]}} for every binding kept.
    """
    code_systems = CodeSystemIndex(package["CodeSystem"])
    expander = ValueSetExpander(package["ValueSet"], code_systems)
    builder = TableBuilder(expander)
    for sd in type_structures(package["StructureDefinition"], set(supported)):
        builder.add_structure(sd)
    tables = builder.pruned(set(supported))
    value_sets = {
        url: {system: sorted(codes) for system, codes in sorted(expander.expand(url).items())}
        for url in sorted(builder.enumerable)
    }
    document = {
        "fhirVersion": FHIR_VERSION,
        "resources": [name for name in supported if name in tables],
        "tables": tables,
        "valueSets": value_sets,
    }
    return document, builder


# ---------------------------------------------------------------------------
# Output


def dump(value: Any, path: Path, line_depth: int = 1) -> None:
    """Write JSON with sorted keys, one item a line down to line_depth, compact below."""
    path.write_text(render(value, line_depth) + "\n", encoding="utf-8")


def render(value: Any, depth: int, indent: int = 0) -> str:
    if depth <= 0 or not isinstance(value, dict | list) or not value:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}:{render(v, depth - 1, indent + 1)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + render(v, depth - 1, indent + 1) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def print_list(title: str, names: list[str]) -> None:
    print(f"{title} ({len(names)}):")
    for start in range(0, len(names), 6):
        print("    " + ", ".join(names[start : start + 6]))


def report_bindings(builder: TableBuilder, document: Json) -> None:
    bound = sum(len(paths) for paths in builder.enumerable.values())
    skipped = sum(len(paths) for paths in builder.skipped.values())
    value_sets = len(document["valueSets"])
    print(f"required bindings: {bound} enumerable ({value_sets} value sets), {skipped} skipped")
    for reason, paths in sorted(builder.skipped.items()):
        print(f"  skipped: {reason}: {', '.join(sorted(set(paths)))}")
    codes = sum(len(c) for vs in document["valueSets"].values() for c in vs.values())
    print(f"tables: {len(document['tables'])}, codes listed: {codes}")


def main(argv: list[str] | None = None) -> int:
    project = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=project.parent / "shared")
    parser.add_argument("--out", type=Path, default=project / "profiles" / "r4")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    package = read_package(args.shared / PACKAGE)
    types = build_resource_types(package["StructureDefinition"])
    supported = set(types["supported"])
    dump(types, args.out / "resource-types.json", line_depth=2)
    print_list("supported resource types", types["supported"])
    print_list("refused resource types (R4 only, not in fhir.resources.R4B)", types["refused"])

    bundle = json.loads((args.shared / SEARCH_PARAMETERS).read_text(encoding="utf-8"))
    params, no_expression, no_base = build_search_parameters(bundle, supported)
    dump(params, args.out / "search-parameters.json")
    print(f"search parameters: {len(params)} kept")
    print_list("  dropped, no expression", no_expression)
    print_list("  dropped, no supported base", no_base)

    compartment = json.loads((args.shared / PATIENT_COMPARTMENT).read_text(encoding="utf-8"))
    compartment = build_compartment(compartment, supported)
    dump(compartment, args.out / "compartment-patient.json", line_depth=2)
    print(f"patient compartment: {len(compartment['resource'])} resource types")

    document, builder = build_bindings(package, types["supported"])
    dump(document, args.out / "bindings.json", line_depth=2)
    report_bindings(builder, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
