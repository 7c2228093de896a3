"""Resolving row references (a patient by NHS number or SWIFT id, a practice, a GP) to resource ids, with a
cache shared by every file of a load."""

from __future__ import annotations

import uuid
from typing import Any

from mappings import RefKey

from .fhir import FhirClient
from .plan import criteria

LOOKUP_ELEMENTS = "identifier,active,link"
Lookup = tuple[str, str, str]  # (type, system, value)


def replaced_by(resource: dict[str, Any]) -> str | None:
    """The id a merged-away Patient points to (``link`` replaced-by), else None."""
    if resource.get("active") is not False:
        return None
    for link in resource.get("link", []):
        if link.get("type") == "replaced-by":
            reference = str((link.get("other") or {}).get("reference", ""))
            return reference.rsplit("/", 1)[-1] or None
    return None


def pick(candidates: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(id, None) of the one live resource among matches, following a replaced-by link; (None, why) else."""
    live = [r for r in candidates if replaced_by(r) is None]
    if len(live) == 1:
        return str(live[0]["id"]), None
    if len(live) > 1:
        ids = ", ".join(sorted(str(r["id"]) for r in live))
        return None, f"{len(live)} resources match ({ids}); resolve the duplicate first"
    targets = {replaced_by(r) for r in candidates}
    if len(targets) == 1:
        return targets.pop(), None
    return None, "no resource matches"


class Resolver:
    """Finds (and, for organisations and practitioners, creates) the resources rows refer to."""

    def __init__(self, client: FhirClient | None) -> None:
        self.client = client
        self.cache: dict[Lookup, str] = {}

    def remember(self, lookup: Lookup, resource_id: str) -> None:
        self.cache[lookup] = resource_id

    def forget(self, lookup: Lookup) -> None:
        self.cache.pop(lookup, None)

    def resolve(self, keys: list[RefKey]) -> dict[Lookup, tuple[str | None, str | None]]:
        """(id, None) or (None, reason) for every key; creates missing keys that carry a ``create`` body."""
        result: dict[Lookup, tuple[str | None, str | None]] = {}
        wanted: dict[tuple[str, str], set[str]] = {}
        creatable: dict[Lookup, RefKey] = {}
        for key in keys:
            lookup = key.lookup
            if lookup in self.cache:
                result[lookup] = (self.cache[lookup], None)
            elif self.client is None:
                result[lookup] = (f"dry-run-{abs(hash(lookup)) % 10**12}", None)
            else:
                wanted.setdefault((key.type, key.system), set()).add(key.value)
                if key.create is not None:
                    creatable[lookup] = key
        for (kind, system), values in wanted.items():
            assert self.client is not None
            found = self.client.by_identifier(kind, system, sorted(values), LOOKUP_ELEMENTS)
            for value in values:
                lookup = (kind, system, value)
                resource_id, why = pick(found.get(value, []))
                if resource_id is not None:
                    self.cache[lookup] = resource_id
                    result[lookup] = (resource_id, None)
                elif lookup not in creatable:
                    result[lookup] = (None, why)
        missing = [creatable[lookup] for lookup in creatable if lookup not in result]
        if missing:
            result.update(self.create(missing))
        return result

    def create(self, keys: list[RefKey]) -> dict[Lookup, tuple[str | None, str | None]]:
        """Conditional creates (If-None-Exist on the identifier), so concurrent loads cannot duplicate."""
        assert self.client is not None
        entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": key.create,
                    "request": {"method": "POST", "url": key.type,
                                "ifNoneExist": criteria(key.system, key.value)}}
                   for key in keys]
        results = self.client.transaction(entries)
        out: dict[Lookup, tuple[str | None, str | None]] = {}
        for key, done in zip(keys, results, strict=True):
            if done.id:
                self.cache[key.lookup] = done.id
                out[key.lookup] = (done.id, None)
            else:
                out[key.lookup] = (None, f"could not create {key.type} {key.system}|{key.value}")
        return out
