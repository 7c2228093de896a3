"""Reading the bundled conformance resources from the `profiles` package, rewritten to the project base."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

DEFAULT_BASE = "https://sharedcare.example.org/fhir"
FOLDERS = ("structuredefinitions", "terminology", "searchparameters")
KINDS = ("StructureDefinition", "CodeSystem", "ValueSet", "ConceptMap", "SearchParameter")
BASE_FORM = re.compile(r"^https?://[^\s\"\\]+[^/\s\"\\]$")

Json = dict[str, Any]


@dataclass
class ConformanceSet:
    """The bundled conformance resources, by resource type, in a stable order."""

    base: str = DEFAULT_BASE
    by_type: dict[str, list[Json]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def of(self, kind: str) -> list[Json]:
        return self.by_type.get(kind, [])

    def all(self) -> list[Json]:
        return [resource for kind in KINDS for resource in self.by_type[kind]]


def check_base(base: str) -> str:
    """The project base without a trailing slash; refuses values that could not be a URL prefix."""
    base = base.rstrip("/")
    if not BASE_FORM.match(base):
        raise ValueError(f"PROJECT_BASE_URI must be an http(s) URL without spaces or quotes, not {base!r}")
    return base


def rewrite(text: str, base: str) -> str:
    """Replace the default project base by the configured one throughout a file's text."""
    return text if base == DEFAULT_BASE else text.replace(DEFAULT_BASE, base)


def load_conformance(base: str = DEFAULT_BASE) -> ConformanceSet:
    """Every bundled StructureDefinition, CodeSystem, ValueSet, ConceptMap and SearchParameter."""
    base = check_base(base)
    found = ConformanceSet(base)
    root = resources.files("profiles")
    for folder in FOLDERS:
        directory = root.joinpath(folder)
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir(), key=lambda item: item.name):
            if not entry.name.endswith(".json"):
                continue
            document = json.loads(rewrite(entry.read_text(encoding="utf-8"), base))
            for resource in unbundle(document):
                if resource.get("resourceType") in found.by_type:
                    found.by_type[resource["resourceType"]].append(resource)
    return found


def unbundle(document: Json) -> list[Json]:
    """A file holds one resource or a Bundle of them."""
    if document.get("resourceType") == "Bundle":
        return [entry["resource"] for entry in document.get("entry", []) if "resource" in entry]
    return [document]
