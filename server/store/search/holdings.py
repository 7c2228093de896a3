"""The people each organisation holds, kept as rows (`reach_people`), so a caller's reach is one join.

An access policy names the people an organisation holds by FHIR searches (`profiles/access/<kind>.yaml`).
Evaluated inside every query, those searches made PostgreSQL plan from the organisation's whole record;
kept as rows they cost one index probe per candidate. A holder (a kind and an organisation) gets its rows
the first time one of its callers needs them (and again when its policy's relationships are edited; when a
relationship names a date, each new day evaluates again the people whose dated matches the days crossed), and
every write keeps them true in its own transaction: the people named by a written resource of a type a
relationship searches are evaluated again, and a change to a type a relationship reaches through (an
Organization's identifier or parent) evaluates the holders of that kind whole. The standing objections to
sharing are kept the same way (`reach_objections`, a row per objecting person and Consent): made whole
when a caller that honours objections first needs them, kept by every write of a Consent.

Concurrency on PostgreSQL: making a holder's rows takes an exclusive advisory lock that writers share
while they keep rows, so a new holder's rows include every committed write and every later write sees
the holder; writers lock each person they evaluate, so the last to commit evaluates last."""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Delete,
    FromClause,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    delete,
    false,
    literal,
    not_,
    or_,
    select,
    union,
)
from sqlalchemy.dialects import postgresql, sqlite

from ...fhir.outcome import FhirError, Issue
from ...fhir.searchparams import COLUMN_PARAMS
from ...security.policy import AccessPolicy, Passing, Relationship, organization_token
from ..among import among
from ..db import Database, advisory_locks, is_postgres, transaction
from ..maintenance import analyze_table
from ..schema import idx_date, idx_reference, reach_holders, reach_objections, reach_people, resources
from . import predicates

if TYPE_CHECKING:
    from ..repository import PendingRows, Repository
    from .reach import ReachBuilder

HOLDERS_LOCK = 0x5EAC4_0001
"""Advisory lock: exclusive while a holder's rows are made whole, shared by writers keeping rows."""
CROSSABLE = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
"""Comparators a dated criterion of a relationship may have for its rows to be brought up to a new day through
the matches whose bounds the moving date crossed (`ap` widens with the distance from now)."""
CATCH_UP_LIMIT = 20000
"""At most this many resources whose dates the passing days crossed are followed to bring a dated holder's rows
up to a new day; past it the rows are made whole."""
MAX_BUILT = 256
"""Holders whose statements for evaluating people again are kept built (all are dropped past it)."""
CATCH_UP_DAYS = 31
"""Rows of a dated holder made longer ago than this are made whole rather than brought up to today."""
OBJECTIONS = "objections"
"""The `reach_holders` row that marks the objection rows as made."""


def holder_key(policy: AccessPolicy, organization: str | None) -> str:
    """The name of a holder's rows: its kind and its organisation's identifier token."""
    return f"{policy.kind}|{organization_token(organization)}"


def basis_of(policy: AccessPolicy) -> str:
    """A digest of the relationships a holder's rows are evaluated by: rows made by others (the policy was
    edited) are made whole again. Asked at every request of a caller with a holder: digested once per policy."""
    return relationships_digest(policy.patients)


@lru_cache(maxsize=64)
def relationships_digest(patients: str | tuple[Relationship, ...]) -> str:
    relationships = patients if isinstance(patients, str) else \
        [[relationship.search, relationship.patient] for relationship in patients]
    return hashlib.sha256(json.dumps(relationships).encode()).hexdigest()[:16]


def person_lock(patient_id: str) -> int:
    """The advisory lock key of one person's rows."""
    return 0x5EAC5_0000_0000 + zlib.crc32(patient_id.encode())


@dataclass(frozen=True)
class KindTriggers:
    """What writes change the people a kind of organisation holds."""

    searched: frozenset[str]  # the types its relationships search: their people are evaluated again
    through: frozenset[str]  # the types its relationships reach through: its holders are made whole again
    dated: bool  # a relationship names a date relative to today


def triggers_of(policy: AccessPolicy) -> KindTriggers:
    searched: set[str] = set()
    through: set[str] = set()
    dated = False
    for relationship in () if isinstance(policy.patients, str) else policy.patients:
        resource_type, _, query = relationship.search.partition("?")
        searched.add(resource_type)
        dated = dated or "{days_ago:" in query
        for part in query.split("&"):
            name = part.partition("=")[0]
            for step in name.split("."):  # chain steps `param:Type`, reverse chains `_has:Type:param:...`
                pieces = step.split(":")
                through.update(p for p in pieces[1:] if p[:1].isupper())
    return KindTriggers(frozenset(searched), frozenset(through - searched), dated)


@dataclass
class HoldingChange:
    """What one flush of a unit changes for the holders: the people to evaluate again per kind, and the
    kinds whose holders are made whole."""

    people: dict[str, set[str]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)
    consents: bool = False  # a Consent was written: its objection rows are made again


@dataclass
class Holdings:
    """Makes and keeps the holders' rows for one process."""

    builder: ReachBuilder
    database: Database
    kinds: dict[str, KindTriggers] = field(init=False)
    ready: set[tuple[str, str]] = field(init=False, default_factory=set)
    built: dict[Any, tuple[Delete, Select]] = field(init=False, default_factory=dict)
    guard: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.kinds = {kind: triggers_of(policy) for kind, policy in self.builder.book.policies.items()
                      if not policy.whole_record and policy.patients}
        self.trigger_types = frozenset().union(*(t.searched | t.through for t in self.kinds.values()))

    # ------------------------------------------------------------ making rows

    def ensure(self, policy: AccessPolicy, organization: str | None, today: datetime) -> None:
        """Make a holder's rows if no process has (or they were evaluated by other relationships: its policy was
        edited); for relationships naming dates, bring rows made on an earlier day up to today (only the people
        whose dated matches the days since have crossed)."""
        if policy.kind in self.kinds:
            self.made_once(holder_key(policy, organization), today.date().isoformat(), self.kinds[policy.kind].dated,
                           reach_people,
                           lambda connection: self.evaluate(connection, policy, organization, today, None),
                           lambda connection, made: self.catch_up(connection, policy, organization, made, today),
                           basis_of(policy))

    def ensure_objections(self) -> None:
        """Make the objection rows if no process has."""
        self.made_once(OBJECTIONS, datetime.now(UTC).date().isoformat(), False, reach_objections,
                       lambda connection: self.evaluate_objections(connection, None))

    def made_once(self, marker: str, day: str, dated: bool, table: Table, make: Callable[[Connection], None],
                  catch_up: Callable[[Connection, str], bool] | None = None, basis: str = "") -> None:
        """Make the rows the `reach_holders` row `marker` stands for, if no process has or they were made on
        another `basis`, under the exclusive lock, then analyze their table (rows arriving at once misguide every
        plan made on the statistics from before them). Rows `dated` and made before `day` are brought up to it by
        `catch_up` (given the day they were made; False when it cannot), or else made whole again."""
        if (marker, day) in self.ready:
            return
        with self.guard, transaction(self.database, writing=True) as connection:
            advisory_locks(connection, [HOLDERS_LOCK])
            found = connection.execute(select(reach_holders.c.day, reach_holders.c.basis)
                                       .where(reach_holders.c.holder == marker)).first()
            made = None if found is None else found[0]
            stale = made is not None and dated and made < day
            whole = made is None or found[1] != basis  # type: ignore[index]
            if stale and not whole:
                whole = catch_up is None or not catch_up(connection, made)  # type: ignore[arg-type]
            if whole:
                make(connection)
            if whole or stale:
                connection.execute(delete(reach_holders).where(reach_holders.c.holder == marker))
                connection.execute(reach_holders.insert().values(holder=marker, day=day, basis=basis))
        if whole:
            analyze_table(self.database, table.name)
        self.ready.add((marker, day))

    def evaluate_objections(self, connection: Connection, consent_pks: list[int] | None) -> None:
        """Make the objection rows again, of some Consents or (None) of all."""
        kept = reach_objections.c
        cleared = delete(reach_objections)
        found = self.builder.objections()
        if consent_pks is not None:
            postgres = is_postgres(connection)
            cleared = cleared.where(among(kept.consent_pk, consent_pks, postgres))
            found = found.where(among(idx_reference.c.pk, consent_pks, postgres))
        replace_rows(connection, reach_objections, cleared, ["patient", "consent_pk"], found)

    def evaluate(self, connection: Connection, policy: AccessPolicy, organization: str | None, today: datetime,
                 people: list[str] | None) -> None:
        """Evaluate a holder's relationships again, for some people or (None) for everyone."""
        if people is None:
            cleared, found = self.statements(policy, organization, today, None)
            replace_rows(connection, reach_people, cleared, ["holder", "patient"], found)
        elif people:
            cleared, found = self.statements(policy, organization, today, is_postgres(connection))
            replace_rows(connection, reach_people, cleared, ["holder", "patient"], found, {"people": people})

    def statements(self, policy: AccessPolicy, organization: str | None, today: datetime,
                   listed: bool | None) -> tuple[Delete, Select]:
        """The deletion of a holder's rows and the selection of the rows its relationships give, for everyone
        (`listed` None) or for the people bound as `people` (`listed`: whether as a PostgreSQL array). Those for
        people are built once per holder, relationships and day, and reused by every write that evaluates people
        again (building them cost a write more than running them)."""
        key = (holder_key(policy, organization), basis_of(policy), today.date(), listed)
        found_once = self.built.get(key)
        if found_once is not None:
            return found_once
        kept = reach_people.c
        cleared = delete(reach_people).where(kept.holder == key[0])
        person = resources.alias("person")
        found = select(literal(key[0]), person.c.id).where(
            person.c.type == "Patient", person.c.deleted.is_(False),
            holds_patient(self.builder, policy, organization, today, person, row_by_row=listed is not None))
        if listed is None:
            return cleared, found
        if listed:
            people = bindparam("people", type_=ARRAY(Text))
            cleared, found = cleared.where(kept.patient == any_(people)), found.where(person.c.id == any_(people))
        else:
            people = bindparam("people", expanding=True)
            cleared, found = cleared.where(kept.patient.in_(people)), found.where(person.c.id.in_(people))
        if len(self.built) >= MAX_BUILT:
            self.built.clear()
        self.built[key] = (cleared, found)
        return cleared, found

    def catch_up(self, connection: Connection, policy: AccessPolicy, organization: str | None, made: str,
                 today: datetime) -> bool:
        """Bring a dated holder's rows made on the day `made` up to `today` (see `passing_people`); False when
        they are better made whole."""
        people = self.passing_people(connection, policy, organization, made, today)
        if people is None:
            return False
        self.evaluate(connection, policy, organization, today, people)
        return True

    def passing_people(self, connection: Connection, policy: AccessPolicy, organization: str | None, made: str,
                       today: datetime) -> list[str] | None:
        """The people whose standing with a holder can have changed only because the days since `made` (the day
        its rows were made) passed: those named by the matches of a relationship whose dated criterion has a bound
        between the date it named then and the one it names today, each match's other criteria tested on it
        alone. None when the rows are better made whole: made over CATCH_UP_DAYS ago, a dated criterion this
        cannot follow (a chain, a modifier, an approximate comparison, `_lastUpdated`), or more than
        CATCH_UP_LIMIT crossings."""
        from .reach import probed

        since = datetime.fromisoformat(made).replace(tzinfo=UTC)
        if (today - since).days > CATCH_UP_DAYS:
            return None
        people: set[str] = set()
        ref = idx_reference.c
        postgres = is_postgres(connection)
        for relationship in () if isinstance(policy.patients, str) else policy.patients:
            for passing in relationship.passing(organization, since, today):
                crossed = self.crossed(connection, passing)
                if crossed is None:
                    return None
                if not crossed:
                    continue
                matching = self.builder.matching(passing.resource_type, list(passing.others))
                if relationship.patient:  # from each crossed key, its other criteria tested on it alone
                    param = self.builder.registry.get(passing.resource_type, relationship.patient)
                    if param is None:
                        return None
                    found = select(ref.tid).where(among(ref.pk, crossed, postgres), ref.sp == param.key,
                                                  ref.ttype == "Patient",
                                                  probed(matching.where(matching.selected_columns[0] == ref.pk)))
                else:  # its matches are the people
                    passed = resources.alias("passed")
                    found = select(passed.c.id).where(
                        among(passed.c.pk, crossed, postgres),
                        probed(matching.where(matching.selected_columns[0] == passed.c.pk)))
                people.update(connection.execute(found).scalars())
        return sorted(people)

    def crossed(self, connection: Connection, passing: Passing) -> list[int] | None:
        """The keys of the resources whose value of a relationship's dated criterion has a bound (its start or
        end) between the dates the criterion names on the two days, read off the date index's start and end
        orderings, each read stopping past CATCH_UP_LIMIT rows. None when the criterion is not a date parameter
        of the type itself kept in that index with an exact comparator, or more than CATCH_UP_LIMIT crossed."""
        param = self.builder.registry.get(passing.resource_type, passing.name)
        if (param is None or param.type != "date" or param.code in COLUMN_PARAMS or passing.rest
                or passing.prefix not in CROSSABLE):
            return None
        first = predicates.parse_date_value(passing.first, passing.name)[0]
        last = predicates.parse_date_value(passing.last, passing.name)[1]
        keys: set[int] = set()
        for bound in (idx_date.c.lo, idx_date.c.hi):  # each a range of one index: (sp, lo, pk), (sp, hi, pk)
            found = list(connection.execute(select(idx_date.c.pk).where(
                idx_date.c.sp == param.key, bound.between(first, last)).limit(CATCH_UP_LIMIT + 1)).scalars())
            keys.update(found)
            if len(found) > CATCH_UP_LIMIT or len(keys) > CATCH_UP_LIMIT:
                return None
        return sorted(keys)

    def evaluate_all(self, connection: Connection) -> None:
        """Make every holder's rows and the objection rows whole again (after a reindex changed what the
        searches find)."""
        advisory_locks(connection, [HOLDERS_LOCK])
        today = datetime.now(UTC)
        for holder in connection.execute(select(reach_holders.c.holder)).scalars():
            kind, _, organization = holder.partition("|")
            if kind in self.kinds:
                self.evaluate(connection, self.builder.book.policy(kind), organization, today, None)
        self.evaluate_objections(connection, None)

    # ------------------------------------------------------------ keeping rows

    def before_flush(self, repo: Repository, pending: PendingRows) -> HoldingChange | None:
        """What a flush changes for the holders, read before the old index rows go (None: nothing)."""
        written = {create.type for create in pending.creates} | {row[2] for row in pending.versions}
        change = HoldingChange(consents="Consent" in written)
        if not written & self.trigger_types:
            return change if change.consents else None
        holders = self.holders(repo)
        present = {holder.partition("|")[0] for holder in holders}
        stale = set(pending.stale)
        for kind in present & set(self.kinds):
            triggers = self.kinds[kind]
            if any(row[2] in triggers.through and row[0] in stale for row in pending.versions):
                change.whole.add(kind)
                continue
            people: set[str] = set()
            for create in pending.creates:
                if create.type in triggers.searched:
                    people.update(named_people(create.type, create.id, create.body))
            earlier = []
            for pk, _version, resource_type, resource_id, _updated, _method, body in pending.versions:
                if resource_type in triggers.searched:
                    people.update(named_people(resource_type, resource_id, body))
                    if pk in stale:
                        earlier.append(pk)
            if earlier:
                ref = idx_reference.c
                people.update(repo.connection.execute(select(ref.tid).where(
                    among(ref.pk, earlier, repo.postgres), ref.ttype == "Patient")).scalars())
            if people:
                change.people[kind] = people
        return change if (change.people or change.whole or change.consents) else None

    def after_flush(self, repo: Repository, change: HoldingChange, pending: PendingRows) -> None:
        """Evaluate the changed people (or whole holders) and the written Consents' objections again, now the
        flush's index rows are in."""
        connection = repo.connection
        if change.consents:
            self.holders(repo)  # under the shared lock, so objection rows are never made whole meanwhile
            self.evaluate_objections(connection, [row[0] for row in pending.versions if row[2] == "Consent"])
        if change.whole:
            advisory_locks(connection, [HOLDERS_LOCK])
        people = sorted(set().union(*change.people.values())) if change.people else []
        if people:
            advisory_locks(connection, sorted({person_lock(p) for p in people}))
        today = datetime.now(UTC)
        for holder in self.holders(repo):
            kind, _, organization = holder.partition("|")
            if kind in change.whole:
                self.evaluate(connection, self.builder.book.policy(kind), organization, today, None)
            elif kind in change.people:
                self.evaluate(connection, self.builder.book.policy(kind), organization, today,
                              sorted(change.people[kind]))

    def holders(self, repo: Repository) -> list[str]:
        """The holders whose rows exist, read once per unit under the shared lock (so none is made while
        the unit keeps rows without it)."""
        if repo.holders is None:
            advisory_locks(repo.connection, [], shared=[HOLDERS_LOCK])
            repo.holders = list(repo.connection.execute(select(reach_holders.c.holder)).scalars())
        return repo.holders


def replace_rows(connection: Connection, table: Table, cleared: Delete, columns: list[str], found: Select,
                 params: dict[str, Any] | None = None) -> None:
    """Delete the rows `cleared` names and insert those `found` selects instead (a row found twice kept once),
    both run with `params`."""
    connection.execute(cleared, params or {})
    dialect = postgresql if is_postgres(connection) else sqlite
    connection.execute(dialect.insert(table).from_select(columns, found).on_conflict_do_nothing(), params or {})


def named_people(resource_type: str, resource_id: str, body: str | None) -> set[str]:
    """The people a version names: a Patient itself, or the Patients its text refers to."""
    from ..repository import patient_ids_in

    if resource_type == "Patient":
        return {resource_id}
    return patient_ids_in(body) if body else set()


def holds_patient(builder: ReachBuilder, policy: AccessPolicy, organization: str | None, today: datetime,
                  patient: FromClause, row_by_row: bool = False) -> ColumnElement[bool]:
    """Whether a Patient row is one the organisation holds by its policy's relationships, evaluated: it
    matches a relationship whose matches are Patients, or a relationship's matches name it. With `row_by_row`
    (a few people evaluated, as a write or a new day needs) each person's own matches are found from them and
    tested one by one; otherwise the organisation's matches are found once (PostgreSQL, misjudging how many a
    chained criterion finds, would otherwise gather a hospital's every admission to evaluate a dozen people)."""
    tests: list[ColumnElement[bool]] = []
    named: list[Select] = []
    ref = idx_reference.c
    for relationship in () if isinstance(policy.patients, str) else policy.patients:
        resource_type, params = relationship.query(organization, today)
        if not relationship.patient:
            criteria = builder.criteria(resource_type, params)
            tests.append(and_(*(predicates.build(c, patient, builder.context) for c in criteria)))
            continue
        param = builder.registry.get(resource_type, relationship.patient)
        if param is None:
            raise FhirError(500, [Issue("exception", f"The access policy names {resource_type}."
                                                     f"{relationship.patient}, which is not a parameter")])
        matching = builder.matching(resource_type, params)
        if row_by_row:
            from .reach import probed

            naming = idx_reference.alias("naming")
            match = probed(matching.where(matching.selected_columns[0] == naming.c.pk))
            tests.append(probed(select(naming.c.pk).where(naming.c.tid == patient.c.id, naming.c.ttype == "Patient",
                                                          naming.c.sp == param.key, match)))
            continue
        named.append(select(ref.tid).where(ref.sp == param.key, ref.ttype == "Patient", ref.pk.in_(matching)))
    if named:
        chosen = named[0] if len(named) == 1 else select(union(*named).subquery().c.tid)
        tests.append(patient.c.id.in_(chosen))
    return or_(*tests) if tests else false()


def held_clause(holder: str, patient_id: Any, counting: bool = False,
                objecting: Callable[[Any], ColumnElement[bool]] | None = None) -> ColumnElement[bool]:
    """Whether the holder's rows name a person (a column or a value); tested row by row unless `counting`
    (see `Reach.clause`). `objecting`, when given, tests the person found (whether an objection hides them):
    a person it holds true of is not held."""
    from .reach import probed

    kept = reach_people.alias("held")
    found = select(kept.c.patient).where(kept.c.holder == holder, kept.c.patient == patient_id)
    if objecting is not None:
        found = found.where(not_(objecting(kept.c.patient)))
    return found.exists() if counting else probed(found)
