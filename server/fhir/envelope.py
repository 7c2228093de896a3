"""The envelope of a batch or transaction Bundle as it is validated, and the R4B model's view of it."""

from __future__ import annotations

import re
from typing import Any

import orjson

from .jsontext import dumps
from .outcome import Issue

ENTRY_AT = re.compile(r"Bundle\.entry\[(\d+)\]")
WRITES = ("POST", "PUT")


def envelope(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle without the resources its POST and PUT entries write (each of those is validated when it
    is written, so every resource is checked once). Its entries are objects holding a request."""
    entries = bundle.get("entry")
    if entries.__class__ is not list:
        return bundle

    def trimmed(entry: dict[str, Any]) -> dict[str, Any]:
        if entry["request"]["method"] in WRITES and "resource" in entry:
            return {key: value for key, value in entry.items() if key != "resource"}
        return entry
    return {**bundle, "entry": [trimmed(entry) for entry in entries]}


def distinct_entries(bundle: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """The Bundle with each distinct entry once and without its fullUrl (a uri the FHIR JSON rules check in
    full), and where each kept entry is in the Bundle: the R4B model costs about half a small resource per
    entry, and the entries of a load differ only in their fullUrl and the type they post."""
    entries = bundle.get("entry")
    if entries.__class__ is not list:
        return bundle, []
    first: dict[bytes, int] = {}
    kept, indexes = [], []
    for index, entry in enumerate(entries):
        alike = {key: value for key, value in entry.items() if key != "fullUrl"} if entry.__class__ is dict else entry
        key = dumps(alike, option=orjson.OPT_SORT_KEYS)
        if key not in first:
            first[key] = index
            kept.append(alike)
            indexes.append(index)
    return {**bundle, "entry": kept}, indexes


def relocated(issue: Issue, indexes: list[int]) -> Issue:
    """An issue about the distinct entries' Bundle, pointed at the entry of the Bundle itself."""
    where = issue.expression[0] if issue.expression else ""
    found = ENTRY_AT.match(where)
    if found is None:
        return issue
    moved = f"Bundle.entry[{indexes[int(found.group(1))]}]{where[found.end():]}"
    return Issue(issue.code, issue.diagnostics.replace(where, moved, 1), (moved,), issue.severity, issue.details)
