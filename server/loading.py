"""Loading FHIR Bundle files (JSON, folders, .tar.gz) through the server's one write path, in-process."""

from __future__ import annotations

import fnmatch
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from .api.model import FhirRequest
from .config import Settings
from .fhir import jsontext
from .fhir.outcome import FhirError
from .security.context import Caller

DEFAULT_FIRST = ["*hospitalInformation*", "*practitionerInformation*"]


@dataclass
class LoadSummary:
    """Counts of what a load did."""

    bundles: int = 0
    entries: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"{self.bundles} bundles, {self.entries} entries, {len(self.failed)} failed"]
        lines += [f"  {name}: {reason}" for name, reason in self.failed[:20]]
        return "\n".join(lines)


def bundle_sources(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, JSON bytes) of every bundle under the given files, folders and archives."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*.json")):
                yield str(child), child.read_bytes()
        elif path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path) as archive:
                for member in sorted(archive.getmembers(), key=lambda m: m.name):
                    if member.isfile() and member.name.endswith(".json"):
                        handle = archive.extractfile(member)
                        if handle is not None:
                            yield member.name, handle.read()
        else:
            yield str(path), path.read_bytes()


def ordered(sources: list[tuple[str, bytes]], first: list[str]) -> list[tuple[str, bytes]]:
    def rank(item: tuple[str, bytes]) -> int:
        for position, pattern in enumerate(first):
            if fnmatch.fnmatch(Path(item[0]).name, pattern) or fnmatch.fnmatch(item[0], pattern):
                return position
        return len(first)

    return sorted(sources, key=rank)


def post_bundle(api: Any, bundle: Any, caller: Caller, base_url: str = "") -> Any:
    request = FhirRequest(method="POST", path="", body=bundle, base_url=base_url, prefer_return="minimal")
    return api.handle(request, caller)


def load_bundle_files(settings: Settings, paths: list[Path], first_patterns: list[str] | None = None,
                      progress: bool = True) -> LoadSummary:
    from .app import create_app

    app = create_app(settings)
    api = app.extensions["sharedcare"]
    caller = Caller.system("import")
    summary = LoadSummary()
    sources = ordered(list(bundle_sources(paths)), first_patterns or DEFAULT_FIRST)
    for name, data in tqdm(sources, desc="bundles", unit="bundle", disable=not progress):
        summary.bundles += 1
        try:
            bundle = jsontext.parse(data, name)
        except FhirError as exc:
            summary.failed.append((name, exc.message[:300]))
            continue
        summary.entries += len(bundle.get("entry", []))
        try:
            response = post_bundle(api, bundle, caller)
        except FhirError as exc:
            summary.failed.append((name, exc.message[:300]))
            continue
        body = orjson.loads(response.body)
        failures = [e["response"]["status"] for e in body.get("entry", []) if e["response"]["status"][:1] not in "23"]
        if failures:
            summary.failed.append((name, f"{len(failures)} entries failed: {failures[:3]}"))
    return summary
