"""The long-lived pieces a repository uses: validator, indexer, search engine, and the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..fhir.bindings import BindingChecker
from ..fhir.elements import ElementModel
from ..fhir.profiles import DEFAULT_BASE, ProfileValidator
from ..fhir.searchparams import SearchParamRegistry
from ..fhir.types import TypeRegistry, read_profile_text
from ..fhir.validate import ResourceValidator
from ..security.context import Caller
from ..security.policy import PolicyBook
from .audit import AuditTrail
from .db import Database, transaction
from .indexer import Indexer
from .integrity import MODES, integrity_modes
from .maintenance import StatisticsKeeper
from .repository import Repository, WriteListener
from .search.engine import SearchEngine
from .search.holdings import Holdings
from .search.reach import ReachBuilder

if TYPE_CHECKING:
    from ..events.outbox import Outbox
    from ..events.topics import TopicBook


@dataclass
class StoreServices:
    """Everything shared by repositories of one process; built once, read-only afterwards."""

    database: Database
    types: TypeRegistry
    elements: ElementModel
    bindings: BindingChecker
    validator: ResourceValidator
    profiles: ProfileValidator
    registry: SearchParamRegistry
    indexer: Indexer
    search: SearchEngine
    base_url: str
    statistics: StatisticsKeeper
    policies: PolicyBook
    reach: ReachBuilder
    audit: AuditTrail
    holdings: Holdings
    project_base: str = DEFAULT_BASE
    integrity: frozenset[str] = frozenset(MODES)
    listeners: list[WriteListener] = field(default_factory=list)
    outbox: Outbox | None = None
    topics: TopicBook | None = None

    @classmethod
    def build(cls, database: Database, base_url: str, project_base_uri: str = DEFAULT_BASE,
              mandatory_profiles: str = "", policy_folder: str | None = None,
              referential_integrity: str = "write,delete") -> StoreServices:
        types = TypeRegistry.load()
        elements = ElementModel.load()
        bindings = BindingChecker.load()
        profiles = ProfileValidator.load(project_base_uri, mandatory_profiles, bindings.systems)
        registry = SearchParamRegistry.load(types, elements)
        compartment = patient_compartment()
        search = SearchEngine(registry, base_url, profiles.terminology, compartment)
        policies = PolicyBook.load(policy_folder)
        reach = ReachBuilder(registry, search.context, policies, compartment, database.writer.dialect)
        compartment_keys = reach.compartment_keys(sorted(reach.compartment))
        services = cls(
            database=database,
            types=types,
            elements=elements,
            bindings=bindings,
            validator=ResourceValidator(types, bindings, profiles),
            profiles=profiles,
            registry=registry,
            indexer=Indexer(registry, elements, base_url, frozenset(compartment_keys)),
            search=search,
            base_url=base_url,
            statistics=StatisticsKeeper(database),
            policies=policies,
            reach=reach,
            audit=AuditTrail(compartment_keys),
            holdings=Holdings(reach, database),
            project_base=project_base_uri.rstrip("/"),
            integrity=integrity_modes(referential_integrity),
        )
        from ..events.install import install_events  # notifications: the outbox and the Subscription listener

        install_events(services)
        return services

    @property
    def engine(self) -> Engine:
        """The writing engine (tools and tests that need a plain connection)."""
        return self.database.writer

    @contextmanager
    def unit(self, caller: Caller, *, writing: bool, operation: bool = False) -> Iterator[Repository]:
        """A repository inside one database transaction: committed on success, rolled back on error (its
        statements bounded by the limit for searches, writes or, with `operation`, operations). What runs
        after the commit (the statistics upkeep) cannot fail the unit."""
        self.prepare(caller)
        with transaction(self.database, writing=writing, operation=operation) as connection:
            repository = Repository(connection, caller, self)
            yield repository
            repository.finish()
        if writing:
            self.statistics.committed(repository.versions_written)

    def prepare(self, caller: Caller) -> None:
        """Make the kept rows of the people the caller's organisation holds (if no process has yet today) and, for a
        caller that honours objections, the kept objections (if no process has)."""
        reach = self.reach.reach(caller)
        if reach is not None:
            self.holdings.ensure(reach.policy, caller.organization, reach.today)
            if reach.honour_objection:
                self.holdings.ensure_objections()


def patient_compartment() -> dict[str, list[str]]:
    """Resource type -> the search parameters that put it in a Patient's compartment."""
    definition = json.loads(read_profile_text("r4/compartment-patient.json"))
    return {entry["code"]: list(entry.get("param", [])) for entry in definition.get("resource", [])
            if entry.get("param")}
