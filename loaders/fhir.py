"""A small FHIR client over a Sink: transactions, and searches and reads sent as batch Bundles of GETs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .sinks import Sink, SinkError

MAX_VALUE = 3800  # characters of one search parameter value (the server allows 4000)
PAGE = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_us(text: str) -> int:
    """A FHIR instant as microseconds since the epoch."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class EntryResult:
    """What the server did with one transaction entry."""

    status: int
    type: str | None
    id: str | None
    version: int | None
    last_modified: int | None  # microseconds

    def outcome(self, clock: int) -> str:
        """created, updated or unchanged (an update that kept the current version, written before ``clock``)."""
        if self.status == 201:
            return "created"
        if self.last_modified is not None and self.last_modified >= clock and (self.version or 0) > 1:
            return "updated"
        return "unchanged"

    @property
    def reference(self) -> str | None:
        return f"{self.type}/{self.id}" if self.type and self.id else None


def parse_entry(response: dict[str, Any]) -> EntryResult:
    status_text = str(response.get("status", "0"))
    status = int(status_text.split()[0]) if status_text.split() and status_text.split()[0].isdigit() else 0
    location = str(response.get("location") or "")
    parts = location.split("/")
    kind = ident = None
    version = None
    if "_history" in parts:
        at = parts.index("_history")
        kind, ident = parts[at - 2], parts[at - 1]
        version = int(parts[at + 1]) if at + 1 < len(parts) and parts[at + 1].isdigit() else None
    elif len(parts) >= 2:
        kind, ident = parts[-2], parts[-1]
    if version is None and response.get("etag"):
        tag = str(response["etag"]).replace("W/", "").strip('"')
        version = int(tag) if tag.isdigit() else None
    modified = response.get("lastModified")
    return EntryResult(status, kind, ident, version, instant_us(modified) if modified else None)


def version_of(resource: dict[str, Any]) -> str | None:
    return (resource.get("meta") or {}).get("versionId")


class FhirClient:
    """Everything the loaders ask of a FHIR server, as Bundles through one Sink."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def transaction(self, entries: list[dict[str, Any]]) -> list[EntryResult]:
        """Post entries as one transaction; raises SinkError when the server refuses it."""
        if not entries:
            return []
        response = self.sink.post({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        found = response.get("entry", [])
        if len(found) != len(entries):
            raise SinkError(500, {"issue": [{"severity": "error", "code": "exception", "diagnostics":
                                             f"transaction answered {len(found)} entries for {len(entries)}"}]})
        return [parse_entry(e.get("response", {})) for e in found]

    def batch_get(self, urls: list[str]) -> list[tuple[int, dict[str, Any] | None]]:
        """GET each URL in one batch Bundle: (status, resource or None) per URL, in order."""
        if not urls:
            return []
        bundle = {"resourceType": "Bundle", "type": "batch",
                  "entry": [{"request": {"method": "GET", "url": url}} for url in urls]}
        response = self.sink.post(bundle)
        out = []
        for entry in response.get("entry", []):
            result = parse_entry(entry.get("response", {}))
            out.append((result.status, entry.get("resource")))
        return out

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every match of a search, following next links."""
        return self.search_many([(resource_type, params)])[0]

    def search_many(self, searches: list[tuple[str, list[tuple[str, str]]]]) -> list[list[dict[str, Any]]]:
        """Several searches in one batch Bundle per round of pages; each answer is its full list of matches."""
        results: list[list[dict[str, Any]]] = [[] for _ in searches]
        pending = [(i, f"{t}?{urlencode([*p, ('_count', str(PAGE))])}") for i, (t, p) in enumerate(searches)]
        while pending:
            answers = self.batch_get([url for _, url in pending])
            following = []
            for (index, url), (status, bundle) in zip(pending, answers, strict=True):
                if status != 200 or not isinstance(bundle, dict):
                    failure = SinkError(status or 500, bundle if isinstance(bundle, dict) else None)
                    raise SinkError(failure.status, {"issue": [{"severity": "error", "code": "exception",
                                                                "diagnostics": f"search {url[:200]} failed: "
                                                                               f"{failure.diagnostics}"}]})
                for entry in bundle.get("entry", []):
                    if (entry.get("search") or {}).get("mode", "match") == "match" and "resource" in entry:
                        results[index].append(entry["resource"])
                nxt = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
                if nxt:
                    following.append((index, nxt))
            pending = following
        return results

    def by_identifier(self, resource_type: str, system: str, values: list[str],
                      elements: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Current resources carrying ``system|value`` for each value (values with no match are absent)."""
        unique = sorted(set(values))
        searches = []
        for chunk in chunks([f"{system}|{escape(v)}" for v in unique]):
            params = [("identifier", chunk)]
            if elements:
                params.append(("_elements", elements))
            searches.append((resource_type, params))
        found: dict[str, list[dict[str, Any]]] = {}
        wanted = set(unique)
        for matches in self.search_many(searches):
            for resource in matches:
                for identifier in resource.get("identifier", []):
                    value = identifier.get("value")
                    if identifier.get("system") == system and value in wanted:
                        found.setdefault(value, []).append(resource)
        return found

    def read_many(self, resource_type: str, ids: list[str],
                  narrowing: list[tuple[str, str]] | None = None) -> dict[str, dict[str, Any]]:
        """Current versions by id (missing ones, and those the narrowing search parameters leave out, are
        absent)."""
        searches = [(resource_type, [("_id", chunk), *(narrowing or [])]) for chunk in chunks(sorted(set(ids)))]
        return {r["id"]: r for matches in self.search_many(searches) for r in matches}


def escape(value: str) -> str:
    """Escape the characters a token search value gives meaning to (``,`` ``|`` ``$`` ``\\``)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def chunks(values: list[str], limit: int = MAX_VALUE) -> list[str]:
    """Comma-joined OR lists of values, each at most ``limit`` characters."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for value in values:
        if current and size + len(value) + 1 > limit:
            out.append(",".join(current))
            current, size = [], 0
        current.append(value)
        size += len(value) + 1
    if current:
        out.append(",".join(current))
    return out
