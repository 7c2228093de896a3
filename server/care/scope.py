"""Who a report or list is about: a practice (ODS code), a locality (Organization and its practices), or all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..fhir.outcome import bad_request
from ..store.repository import Repository
from .names import ODS
from .reads import referencing, stream

if TYPE_CHECKING:
    from .service import CareServices

Json = dict[str, Any]


@dataclass
class Scope:
    """Practices by ODS code and Organization id; empty sets mean the whole area."""

    label: str = "the whole area"
    ods: set[str] = field(default_factory=set)
    organizations: set[str] = field(default_factory=set)
    whole: bool = True

    def holds(self, patient: Json) -> bool:
        if self.whole:
            return True
        for reference in patient.get("generalPractitioner") or ():
            if not isinstance(reference, dict):
                continue
            identifier = reference.get("identifier") or {}
            if identifier.get("system") == ODS and identifier.get("value") in self.ods:
                return True
            literal = str(reference.get("reference", ""))
            if literal.startswith("Organization/") and literal.split("/", 1)[1] in self.organizations:
                return True
        return False


def organizations_by_identifier(repo: Repository, text: str) -> list[tuple[str, Json]]:
    """Organizations matching `Organization/id`, `system|value` or a bare ODS code."""
    if text.startswith("Organization/"):
        found = repo.fetch_current("Organization", text.split("/", 1)[1])
        return [] if found is None or found.deleted else [(found.id, found.json())]
    system, _, value = text.rpartition("|")
    query = f"identifier={system or ODS}|{value}"
    return [(resource_id, repo.fetch_current("Organization", resource_id).json())  # type: ignore[union-attr]
            for _pk, resource_id in repo.find("Organization", query, what="locality")]


def resolve_scope(care: CareServices, repo: Repository, practice: str | None, locality: str | None) -> Scope:
    """The scope of a practice (ODS code) or a locality (an Organization whose practices are `partOf` it)."""
    if practice and locality:
        raise bad_request("Give a practice or a locality, not both", "practice")
    if practice:
        scope = Scope(f"practice {practice}", whole=False)
        scope.ods.add(practice)
        for resource_id, _body in organizations_by_identifier(repo, practice):
            scope.organizations.add(resource_id)
        return scope
    if locality:
        found = organizations_by_identifier(repo, locality)
        if not found:
            raise bad_request(f"No Organization matches the locality {locality!r}", "locality", code="not-found")
        scope = Scope(f"locality {found[0][1].get('name') or locality}", whole=False)
        frontier = [resource_id for resource_id, _body in found]
        seen = set(frontier)
        while frontier:
            children = referencing(repo.connection, "Organization", "partof", "Organization", frontier)
            frontier = [c for c in children if c not in seen]
            seen.update(frontier)
        scope.organizations = seen
        for _id, text in stream(repo.connection, "Organization", ids=sorted(seen)):
            for identifier in orjson.loads(text).get("identifier") or ():
                if identifier.get("system") == ODS and identifier.get("value"):
                    scope.ods.add(str(identifier["value"]))
        return scope
    return Scope()
