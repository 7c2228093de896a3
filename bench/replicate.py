"""Replicating the Synthea sets to any size: each copy gets new ids, rewritten references and unique
patient identifiers, and unconditional organisation/practitioner entries become conditional creates."""

from __future__ import annotations

import json
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETS = (
    "synthea3-master-10p.tar.gz",
    "synthea-hiv-google-fhir-data-pipes.tar.gz",
    "synthea-v2.4-smart-generated-sample-data.tar.gz",
)
NAMESPACE = uuid.UUID("5b3c1f5e-8a43-4d6f-9a57-1f0c4e0b9c11")
SHARED_TYPES = ("Organization", "Practitioner", "Location", "PractitionerRole")


@dataclass
class Source:
    """The Synthea material: shared (hospital/practitioner) bundles and patient bundles."""

    shared: list[dict[str, Any]]
    patients: list[dict[str, Any]]


def read_sets(shared_dir: Path) -> Source:
    shared, patients = [], []
    for name in SETS:
        with tarfile.open(shared_dir / "data" / "synthea" / name) as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")),
                             key=lambda m: m.name)
            for member in members:
                bundle = json.load(archive.extractfile(member))  # type: ignore[arg-type]
                (shared if "Information" in member.name else patients).append(make_conditional(bundle))
    return Source(shared, patients)


def make_conditional(bundle: dict[str, Any]) -> dict[str, Any]:
    """Organisation and practitioner entries become conditional creates on their first identifier."""
    for entry in bundle["entry"]:
        resource = entry["resource"]
        request = entry["request"]
        if resource["resourceType"] in SHARED_TYPES and request["method"] == "POST" and "ifNoneExist" not in request:
            identifiers = resource.get("identifier") or []
            if identifiers and identifiers[0].get("system") and identifiers[0].get("value"):
                request["ifNoneExist"] = f"identifier={identifiers[0]['system']}|{identifiers[0]['value']}"
    return bundle


def copy_bundle(bundle: dict[str, Any], copy: int) -> dict[str, Any]:
    """A copy of a patient bundle with fresh ids and references, unique per copy number."""
    if copy == 0:
        return bundle
    mapping: dict[str, str] = {}
    for entry in bundle["entry"]:
        full_url = entry.get("fullUrl", "")
        if full_url.startswith("urn:uuid:") and entry["resource"]["resourceType"] not in SHARED_TYPES:
            mapping[full_url] = "urn:uuid:" + str(uuid.uuid5(NAMESPACE, f"{copy}:{full_url}"))
    text = json.dumps(bundle)
    for old, new in mapping.items():
        text = text.replace(old, new).replace(old[len("urn:uuid:"):], new[len("urn:uuid:"):])
    copied = json.loads(text)
    for entry in copied["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            for identifier in resource.get("identifier", []):
                if "value" in identifier:
                    identifier["value"] = f"{identifier['value']}-c{copy}"
    return copied


def replicated(source: Source, target_resources: int, start_resources: int = 0) -> Iterator[dict[str, Any]]:
    """Patient bundles, copy after copy, from where `start_resources` ended up to `target_resources`."""
    produced = 0
    copy = 0
    while True:
        for bundle in source.patients:
            size = len(bundle["entry"])
            if produced >= start_resources:
                if produced >= target_resources:
                    return
                yield copy_bundle(bundle, copy)
            produced += size
        copy += 1
