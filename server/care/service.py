"""CareServices: the care package's long-lived pieces for one store (rule book, stratifier, runs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from ..security.context import Caller
from ..store.repository import Repository
from .engine import Stratifier
from .names import Names
from .rulesets import RuleBook

if TYPE_CHECKING:
    from ..store.services import StoreServices
    from .incidence import CareListener
    from .runs import RunManager

CARE = "care"
CARE_SUBJECT = f"system:{CARE}"


def today_utc() -> date:
    return datetime.now(UTC).date()


@dataclass
class CareServices:
    """Everything the care package shares between requests and background runs of one process."""

    store: StoreServices
    book: RuleBook
    names: Names
    stratifier: Stratifier
    clock: Callable[[], date] = today_utc
    listener: CareListener | None = None
    runs: RunManager | None = field(default=None, repr=False)
    prevalence_seen: bool = False

    @classmethod
    def build(cls, store: StoreServices, book: RuleBook | None = None) -> CareServices:
        """Services for a store (the rule book from profiles/rulesets unless given)."""
        from .runs import RunManager

        book = book or RuleBook.load()
        care = cls(store, book, Names(store.profiles.conformance.base), Stratifier(book))
        care.runs = RunManager(care)
        return care

    def today(self) -> date:
        return self.clock()

    @contextmanager
    def unit(self, request_id: str | None = None) -> Iterator[Repository]:
        """A writing unit of work as the care package itself (its writes do not re-trigger incidence)."""
        with self.store.unit(Caller.system(CARE, request_id), writing=True) as repo:
            yield repo

    def beside(self, repo: Repository) -> Repository:
        """A repository acting as the care package inside another unit's transaction."""
        if repo.caller.subject == CARE_SUBJECT:
            return repo
        return Repository(repo.connection, Caller.system(CARE, repo.caller.request_id), repo.services)

    def display(self, system: str, code: str) -> str | None:
        concept = self.store.profiles.terminology.concept(system, code)
        return concept.display if concept is not None else None


def install(store: StoreServices, book: RuleBook | None = None) -> CareServices:
    """Build the care services of a store and register their write listeners with it: incidence, then the
    invalidation of stored case-status answers (last, so it also hears what incidence writes)."""
    from .documents import StatusInvalidation
    from .incidence import CareListener

    care = CareServices.build(store, book)
    care.listener = CareListener(care)
    store.listeners.append(care.listener)
    store.listeners.append(StatusInvalidation())
    return care


def care_of(store: StoreServices) -> CareServices:
    """The care services installed on a store (installing them if nobody has)."""
    from .incidence import CareListener

    for listener in store.listeners:
        if isinstance(listener, CareListener):
            return listener.care
    return install(store)
