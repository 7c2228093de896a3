"""Generate the snapshots of the project's StructureDefinitions from their hand-written differentials.

Run by hand after editing a differential (the server never runs it):

    .venv/bin/python tools/build_profiles.py --shared /work/shared

Each `profiles/structuredefinitions/*.json` holds a profile or an extension with its `differential`;
this tool fills in each differential element's `path` (from its `id`), puts the differential in snapshot
order, stamps the profile's URL as the `source` of the constraints it adds, and writes the `snapshot`
back into the same file.

The snapshot is built on the **base R4 snapshot of the type** from the official package, even where
`baseDefinition` is a UK Core profile: the UK Core package is not available offline, so the UK Core
constraints a profile relies on are restated in its differential (see profiles/README.md). Datatypes
are unfolded where the differential constrains their children (`Patient.identifier:nhsNumber.system`),
slices are added after the element they slice, and element `mapping`s are left out to keep the files
small. The tool also checks that every binding in a differential names a ValueSet the server can
resolve (a bundled one or an enumerable R4 one).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

PACKAGE = "fhir-r4/hl7.fhir.r4.examples-4.0.1.tgz"
ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles" / "structuredefinitions"
TERMINOLOGY = ROOT / "profiles" / "terminology"
BINDINGS = ROOT / "profiles" / "r4" / "bindings.json"
CORE = "http://hl7.org/fhir/StructureDefinition/"
MERGED_KEYS = ("sliceName", "slicing", "short", "definition", "comment", "min", "max", "type", "binding",
               "mustSupport", "meaningWhenMissing")
FIXED_PREFIXES = ("fixed", "pattern")

Json = dict[str, Any]


def read_package(shared: Path) -> dict[str, Json]:
    """Base R4 StructureDefinitions by type name (resources and datatypes)."""
    found: dict[str, Json] = {}
    with tarfile.open(shared / PACKAGE) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if not (name.startswith("StructureDefinition-") and name.endswith(".json")):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            definition = json.loads(handle.read())
            if definition.get("derivation") == "specialization" or definition.get("id") in ("Element", "Resource"):
                found[definition["id"]] = definition
    return found


def path_of(element_id: str) -> str:
    """The element path of an id: slice names removed (`A.b:s.c` -> `A.b.c`)."""
    return ".".join(part.split(":", 1)[0] for part in element_id.split("."))


def parent_id(element_id: str) -> str:
    return element_id.rsplit(".", 1)[0]


def strip(element: Json) -> Json:
    out = copy.deepcopy(element)
    out.pop("mapping", None)
    return out


class SnapshotBuilder:
    """Applies one differential to a copy of the base snapshot."""

    def __init__(self, definitions: dict[str, Json], url: str) -> None:
        self.definitions = definitions
        self.url = url
        self.elements: list[Json] = []

    def build(self, base_type: str, differential: list[Json]) -> list[Json]:
        self.elements = [strip(e) for e in self.definitions[base_type]["snapshot"]["element"]]
        for element in differential:
            self.apply(element)
        return self.elements

    def index_of(self, element_id: str) -> int | None:
        for position, element in enumerate(self.elements):
            if element["id"] == element_id:
                return position
        return None

    def end_of(self, element_id: str) -> int:
        """Position after an element, its descendants and its slices (with theirs)."""
        position = self.index_of(element_id)
        if position is None:
            raise ValueError(f"{self.url}: no element {element_id}")
        position += 1
        while position < len(self.elements):
            other = self.elements[position]["id"]
            if not (other.startswith(element_id + ".") or other.startswith(element_id + ":")):
                break
            position += 1
        return position

    def ensure(self, element_id: str) -> Json:
        """The snapshot element with this id, creating slices and unfolding datatypes as needed."""
        position = self.index_of(element_id)
        if position is not None:
            return self.elements[position]
        head, _, last = element_id.rpartition(".")
        if ":" in last:
            name, _, slice_name = last.partition(":")
            unsliced = self.ensure(f"{head}.{name}" if head else name)
            if "slicing" not in unsliced:
                raise ValueError(f"{self.url}: {element_id} slices an element with no slicing")
            created = {key: copy.deepcopy(value) for key, value in unsliced.items() if key != "slicing"}
            created["id"] = element_id
            created["sliceName"] = slice_name
            self.elements.insert(self.end_of(unsliced["id"]), created)
            return created
        parent = self.ensure(head)
        self.unfold(parent)
        position = self.index_of(element_id)
        if position is None:
            raise ValueError(f"{self.url}: {element_id} is not an element of {parent['id']}")
        return self.elements[position]

    def unfold(self, parent: Json) -> None:
        """Insert the children of a datatype element (from the datatype's own snapshot)."""
        if any(e["id"].startswith(parent["id"] + ".") for e in self.elements):
            return
        types = [t["code"] for t in parent.get("type", [])]
        if len(types) != 1 or types[0] not in self.definitions:
            raise ValueError(f"{self.url}: cannot unfold {parent['id']} of types {types}")
        datatype = types[0]
        children = []
        for element in self.definitions[datatype]["snapshot"]["element"][1:]:
            child = strip(element)
            suffix = element["id"][len(datatype):]
            child["id"] = parent["id"] + suffix
            child["path"] = parent["path"] + element["path"][len(datatype):]
            children.append(child)
        position = self.elements.index(parent) + 1
        self.elements[position:position] = children

    def apply(self, diff: Json) -> None:
        target = self.ensure(diff["id"])
        for key, value in diff.items():
            if key in ("id", "path"):
                continue
            if key == "constraint":
                target.setdefault("constraint", [])
                target["constraint"] = [c for c in target["constraint"]
                                        if c["key"] not in {n["key"] for n in value}]
                target["constraint"].extend(copy.deepcopy(value))
            elif key in MERGED_KEYS or key.startswith(FIXED_PREFIXES):
                target[key] = copy.deepcopy(value)
            else:
                raise ValueError(f"{self.url}: {diff['id']}: unsupported differential key {key!r}")


def normalise(definition: Json) -> None:
    """Fill in paths and constraint sources of the differential."""
    for element in definition["differential"]["element"]:
        element_id = element["id"]
        element.pop("path", None)
        ordered = {"id": element_id, "path": path_of(element_id), **element}
        element.clear()
        element.update(ordered)
        for constraint in element.get("constraint", []):
            constraint["source"] = definition["url"]


def known_value_sets() -> set[str]:
    urls = {json.loads(p.read_text())["url"] for p in TERMINOLOGY.glob("ValueSet-*.json")}
    return urls | set(json.loads(BINDINGS.read_text())["valueSets"])


def check_bindings(definition: Json, value_sets: set[str]) -> list[str]:
    problems = []
    for element in definition["differential"]["element"]:
        binding = element.get("binding")
        if binding and binding.get("strength") in ("required", "extensible") \
                and binding.get("valueSet", "").split("|")[0] not in value_sets:
            problems.append(f"{definition['url']}: {element['id']} binds to unknown {binding.get('valueSet')}")
    return problems


def build(path: Path, definitions: dict[str, Json], value_sets: set[str]) -> list[str]:
    definition = json.loads(path.read_text(encoding="utf-8"))
    normalise(definition)
    builder = SnapshotBuilder(definitions, definition["url"])
    snapshot = builder.build(definition["type"], definition["differential"]["element"])
    snapshot[0]["id"] = snapshot[0]["path"] = definition["type"]
    position = {element["id"]: index for index, element in enumerate(snapshot)}
    definition["differential"]["element"].sort(key=lambda element: position[element["id"]])
    definition.pop("snapshot", None)
    definition["snapshot"] = {"element": snapshot}
    path.write_text(json.dumps(definition, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return check_bindings(definition, value_sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    definitions = read_package(args.shared)
    value_sets = known_value_sets()
    problems: list[str] = []
    files = sorted(PROFILES.glob("*.json"))
    for path in files:
        problems += build(path, definitions, value_sets)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"built {len(files)} snapshots in {PROFILES}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
