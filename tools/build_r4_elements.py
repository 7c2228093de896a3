"""Generate profiles/r4/elements.json: the element tree of every R4 resource and complex datatype."""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path
from typing import Any

PRIMITIVE_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."


def type_codes(element: dict[str, Any]) -> list[str]:
    codes = []
    for entry in element.get("type", []):
        code = entry["code"]
        if code.startswith(PRIMITIVE_SYSTEM_PREFIX):
            code = "string"
        codes.append(code)
    return codes


def element_table(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Map each owning path ("Observation", "Observation.component") to its child elements."""
    tables: dict[str, dict[str, Any]] = {}
    root = definition["type"]
    for element in definition["snapshot"]["element"]:
        path: str = element["path"]
        if "." not in path:
            continue
        owner, name = path.rsplit(".", 1)
        info: dict[str, Any] = {}
        choice = name.endswith("[x]")
        if choice:
            name = name[:-3]
            info["choice"] = True
        codes = type_codes(element)
        if element.get("contentReference"):
            info["ref"] = root + element["contentReference"].split("#", 1)[1][len(root):]
        elif codes in (["BackboneElement"], ["Element"]):
            info["ref"] = path
        info["types"] = codes
        if element.get("max") not in ("0", "1"):
            info["many"] = True
        if element.get("min", 0) > 0:
            info["min"] = element["min"]
        if element.get("isSummary"):
            info["summary"] = True
        if element.get("isModifier"):
            info["modifier"] = True
        tables.setdefault(owner, {})[name] = info
    return tables


def build(package: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"resources": [], "types": {}}
    with tarfile.open(package) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if not (name.startswith("StructureDefinition-") and name.endswith(".json")):
                continue
            definition = json.load(archive.extractfile(member))
            base_type = definition.get("type") in ("Element", "BackboneElement", "Resource")
            if definition.get("derivation") != "specialization" and not base_type:
                continue
            kind = definition.get("kind")
            if kind not in ("resource", "complex-type"):
                continue
            if kind == "resource" and not definition.get("abstract"):
                out["resources"].append(definition["type"])
            out["types"].update(element_table(definition))
    out["resources"].sort()
    out["types"] = dict(sorted(out["types"].items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "profiles" / "r4")
    args = parser.parse_args()
    data = build(args.shared / "fhir-r4" / "hl7.fhir.r4.examples-4.0.1.tgz")
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "elements.json"
    target.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}: {len(data['resources'])} resource types, {len(data['types'])} element tables")


if __name__ == "__main__":
    main()
