"""Installing the bundled conformance resources (profiles, terminology, search parameters) in the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..fhir.profiles import DEFAULT_BASE
from ..security.context import Caller
from .db import Database
from .services import StoreServices

CONFORMANCE_TYPES = ("StructureDefinition", "CodeSystem", "ValueSet", "ConceptMap", "SearchParameter")


@dataclass
class InstallSummary:
    """What an install did, per outcome."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"conformance resources: {len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged")


def install_conformance(services: StoreServices) -> InstallSummary:
    """Create or update every bundled conformance resource by its id, in one transaction.

    The repository stores no new version when the content is unchanged, so installing again is free.
    """
    summary = InstallSummary()
    with services.unit(Caller.system("conformance"), writing=True) as repo:
        for resource in services.profiles.conformance.all():
            resource_type, resource_id = resource["resourceType"], resource["id"]
            before = repo.fetch_current(resource_type, resource_id)
            result = repo.update(resource_type, resource_id, resource)
            name = f"{resource_type}/{resource_id}"
            if before is None or before.deleted:
                summary.created.append(name)
            elif result.stored.version != before.version:
                summary.updated.append(name)
            else:
                summary.unchanged.append(name)
    return summary


def install_bundled(database_url: str, project_base_uri: str = DEFAULT_BASE) -> InstallSummary:
    """Install into the database at a URL (used by `sharedcare db upgrade` and the test fixtures)."""
    database = Database.connect(database_url)
    try:
        return install_conformance(StoreServices.build(database, "", project_base_uri))
    finally:
        database.dispose()
