"""Planned writes: transaction entries (or resources left as they are) and the rows they stand for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from server.store.repository import VERSION_META, content_of

from .fhir import EntryResult, escape


@dataclass
class Planned:
    """One transaction entry, or (entry None) a resource whose current version already says the same."""

    type: str
    rows: list[int]
    entry: dict[str, Any] | None = None
    on_result: Callable[[EntryResult], None] | None = None
    race: bool = False  # a conditional create: answered 200, someone else created it first; plan again
    kept: tuple[str, str] | None = None  # (id, version) of the resource left as it is (entry None)


@dataclass
class Plan:
    """What one batch of rows will write, plus rows it had to reject or hold while planning."""

    planned: list[Planned] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # fullUrl -> literal reference of an existing resource
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)  # row -> (column, reason)

    def extend(self, other: Plan) -> None:
        self.planned.extend(other.planned)
        self.aliases.update(other.aliases)
        self.rejected.update(other.rejected)


def left_as_is(resource_type: str, rows: list[int], current: dict[str, Any]) -> Planned:
    """A resource whose current version already says what the rows say: nothing to write."""
    version = (current.get("meta") or {}).get("versionId")
    return Planned(resource_type, rows, None, kept=(str(current["id"]), str(version)) if version else None)


def content(resource: dict[str, Any] | None) -> dict[str, Any] | None:
    """A resource without the meta elements that describe a version (versionId, lastUpdated, source)."""
    return None if resource is None else content_of(resource)


def same(a: dict[str, Any] | None, b: dict[str, Any] | None, ignore: tuple[str, ...] = ()) -> bool:
    """Equal content, ignoring version meta and the named top-level elements."""
    ca, cb = content(a), content(b)
    if ca is None or cb is None:
        return ca is cb
    if ignore:
        ca = {k: v for k, v in ca.items() if k not in ignore}
        cb = {k: v for k, v in cb.items() if k not in ignore}
    return ca == cb


def for_write(resource: dict[str, Any], provenance: str | None) -> dict[str, Any]:
    """A copy ready to PUT: version meta dropped, ``meta.source`` naming this load's Provenance."""
    body = dict(resource)
    meta = {k: v for k, v in (body.get("meta") or {}).items() if k not in VERSION_META}
    if provenance:
        meta["source"] = provenance
    if meta:
        body["meta"] = meta
    else:
        body.pop("meta", None)
    return body


def put_by_id(resource: dict[str, Any], full_url: str | None, version: str | None) -> dict[str, Any]:
    """An update of an existing resource by id, guarded by its version (If-Match)."""
    request: dict[str, Any] = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    if version:
        request["ifMatch"] = f'W/"{version}"'
    entry: dict[str, Any] = {"resource": resource, "request": request}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put_conditional(resource: dict[str, Any], system: str, value: str, full_url: str | None) -> dict[str, Any]:
    """A conditional update on an identifier (creates when nothing matches): reloads update, never duplicate."""
    entry: dict[str, Any] = {"resource": resource,
                             "request": {"method": "PUT",
                                         "url": f"{resource['resourceType']}?{criteria(system, value)}"}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def post_conditional(resource: dict[str, Any], system: str, value: str, full_url: str | None) -> dict[str, Any]:
    """A conditional create on an identifier (If-None-Exist), serialised by the server against concurrent ones."""
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"],
                                                               "ifNoneExist": criteria(system, value)}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def criteria(system: str, value: str) -> str:
    """``identifier=system|value`` as a URL query (token-escaped, percent-encoded where needed)."""
    return "identifier=" + quote(f"{system}|{escape(value)}", safe=":/|")
