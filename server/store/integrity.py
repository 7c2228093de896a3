"""Referential integrity: what a unit of work refers to must exist for its caller; no delete leaves a referrer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from ..fhir.outcome import FhirError, Issue
from ..fhir.references import element_path, local_target, reference_values_in_json
from .among import among
from .schema import idx_reference, resources

if TYPE_CHECKING:
    from .repository import Repository

MODES = ("write", "delete")
MAX_NAMED = 10
MAX_IDS_PER_STATEMENT = 20_000  # far above a transaction's usual targets; keeps SQLite under its variable limit

Target = tuple[str, str]


def integrity_modes(text: str) -> frozenset[str]:
    """The checks a REFERENTIAL_INTEGRITY setting turns on: `write,delete` (both), `write`, `delete`, `off`."""
    items = {item.strip() for item in text.split(",") if item.strip()}
    if items == {"off"}:
        return frozenset()
    unknown = items - set(MODES)
    if unknown or not items:
        raise ValueError(f"REFERENTIAL_INTEGRITY must be write,delete, write, delete or off, not {text!r}")
    return frozenset(items)


class IntegrityRefusal(FhirError):
    """A unit of work refused for its references; `source` is the resource whose write or delete it was."""

    source: Target

    def __init__(self, status: int, issues: list[Issue], source: Target) -> None:
        super().__init__(status, issues)
        self.source = source


@dataclass
class ReferenceLedger:
    """The local references each resource of a unit now holds, and the resources it deleted, checked
    together (one statement each) before the unit commits."""

    modes: frozenset[str]
    base_url: str
    held: dict[Target, tuple[dict[str, Any], frozenset[Target]]] = field(default_factory=dict)
    deleted: set[Target] = field(default_factory=set)
    live: set[Target] = field(default_factory=set)  # written (not deleted) by this unit: they exist, in reach

    def written(self, resource_type: str, resource_id: str, resource: dict[str, Any] | None,
                text: str | None) -> None:
        """Note a version written (`text`: its stored JSON): its references replace those of earlier versions
        in this unit."""
        source = (resource_type, resource_id)
        if resource is None:
            self.live.discard(source)
            self.held.pop(source, None)
            if "delete" in self.modes:
                self.deleted.add(source)
            return
        self.deleted.discard(source)
        self.live.add(source)
        if "write" not in self.modes or resource_type == "Bundle":  # a Bundle's references are its entries'
            return
        targets = frozenset(target for value in reference_values_in_json(text or "")
                            if (target := local_target(value, self.base_url)) is not None)
        if targets:
            self.held[source] = (resource, targets)
        else:
            self.held.pop(source, None)

    def check(self, repo: Repository) -> None:
        """400 when a written reference names no live resource the caller sees (absent and out of reach
        alike); 409 when a deleted resource is still referred to. Forgets what it checked."""
        held, deleted, live = self.held, self.deleted, self.live
        self.held, self.deleted, self.live = {}, set(), set()
        if held:
            self.check_targets(repo, held, live)
        if deleted:
            self.check_referrers(repo, deleted)

    def check_targets(self, repo: Repository, held: dict[Target, tuple[dict[str, Any], frozenset[Target]]],
                      live: set[Target]) -> None:
        """Targets the unit itself wrote are not looked up: a write leaves nothing outside the writer's reach."""
        wanted = set().union(*(targets for _resource, targets in held.values()))
        found: set[Target] = wanted & live
        for chunk in chunks(sorted(wanted - live)):
            by_type = grouped(chunk)
            statement = select(resources.c.type, resources.c.id).where(
                resources.c.deleted.is_(False),
                or_(*[and_(resources.c.type == t, among(resources.c.id, ids, repo.postgres))
                      for t, ids in by_type.items()]))
            found.update((row.type, row.id) for row in repo.connection.execute(
                repo.reached(statement, tuple(sorted(by_type)))))
        missing = wanted - found
        if not missing:
            return
        issues, first_source = [], None
        for source, (resource, targets) in sorted(held.items()):
            for target in sorted(targets & missing):
                if len(issues) == MAX_NAMED:
                    break
                first_source = first_source or source
                shown = "/".join(target)
                where = element_path(resource, source[0],
                                     lambda value, t=target: local_target(value, self.base_url) == t)
                issues.append(Issue("not-found", f"{source[0]}/{source[1]}: {where} refers to {shown}, which "
                                                 "does not exist on this server", (where,)))
        raise IntegrityRefusal(400, issues, first_source or ("", ""))

    def check_referrers(self, repo: Repository, deleted: set[Target]) -> None:
        ref = idx_reference.c
        referrers: dict[Target, list[tuple[int, str, str]]] = {}
        for chunk in chunks(sorted(deleted)):
            by_type = grouped(chunk)
            statement = (
                select(ref.ttype, ref.tid, resources.c.pk, resources.c.type, resources.c.id)
                .join(resources, resources.c.pk == ref.pk)
                .where(or_(*[and_(ref.ttype == t, among(ref.tid, ids, repo.postgres)) for t, ids in by_type.items()]))
                .distinct().order_by(ref.ttype, ref.tid, resources.c.type, resources.c.id).limit(MAX_NAMED * 10))
            for row in repo.connection.execute(statement):
                referrers.setdefault((row.ttype, row.tid), []).append((row.pk, row.type, row.id))
        if not referrers:
            return
        target, rows = min(referrers.items())
        visible = self.visible(repo, [pk for pk, _type, _id in rows])
        named = [f"{t}/{i}" for pk, t, i in rows if pk in visible][:MAX_NAMED]
        shown = "/".join(target)
        listed = ", ".join(named) if named else "none this client may see"
        more = " (and resources outside this client's reach)" if len(visible) < len(rows) and named else ""
        raise IntegrityRefusal(409, [Issue(
            "conflict", f"{shown} cannot be deleted: other resources refer to it ({listed}{more}); "
                        "delete or change them first")], target)

    @staticmethod
    def visible(repo: Repository, pks: list[int]) -> set[int]:
        """Which of these resources the caller sees (only they are named)."""
        statement = select(resources.c.pk).where(among(resources.c.pk, pks, repo.postgres))
        return set(repo.connection.execute(repo.reached(statement)).scalars())


def chunks(targets: list[Target]) -> Iterable[list[Target]]:
    for start in range(0, len(targets), MAX_IDS_PER_STATEMENT):
        yield targets[start:start + MAX_IDS_PER_STATEMENT]


def grouped(targets: list[Target]) -> dict[str, list[str]]:
    by_type: dict[str, list[str]] = {}
    for resource_type, resource_id in targets:
        by_type.setdefault(resource_type, []).append(resource_id)
    return by_type
