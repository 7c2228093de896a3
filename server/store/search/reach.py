"""A caller's reach as SQL: which resources exist for it, a predicate every query of the store carries.

The access policy of the caller's kind (`security/policy.py`) names the people its organisation holds
(relationships, each a FHIR search), the types of their records it reads and the shared types it
reads; its scopes narrow the types and may constrain them by search criteria; a standing objection to
sharing hides a person. All of it becomes one predicate over a `resources` row, built by the search
engine's own predicate builders, so the main query, includes, chains, `_has`, counts, history, paging
and conditional criteria all see exactly the same resources."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Select,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, ColumnClause
from sqlalchemy.sql.visitors import InternalTraversal, replacement_traverse

from ...fhir.outcome import FhirError, Issue
from ...security.context import Caller
from ...security.policy import OWNED_TYPES, AccessPolicy, PolicyBook, organization_token
from ..schema import (
    idx_compartment,
    idx_reference,
    idx_token,
    reach_objections,
    reach_people,
    resources,
    subscriptions,
)
from . import predicates
from .holdings import held_clause, holder_key
from .parse import QueryParser

if TYPE_CHECKING:
    from ...fhir.searchparams import SearchParamRegistry
    from .engine import SearchContext

OBJECTION = [("status", "active"), ("scope", "http://terminology.hl7.org/CodeSystem/consentscope|patient-privacy"),
             ("provision-type", "deny")]
"""An objection to sharing: an active privacy Consent whose base provision denies."""
READ_LETTERS = ("r", "s")
TYPE_NAME = re.compile(r"[A-Za-z]+")
MAX_KEPT_REACHES = 512
KEY_ROW = "reach_row"
"""The name of the resources row a reach tested on a key is built over."""
HOT_CURSOR = "hot-path cursor"
"""The key of the driver cursor kept with each pooled connection for the compiled hot-path statements."""


@dataclass
class Reach:
    """The resources one caller reaches, as predicates over `resources` rows (None: no restriction)."""

    builder: ReachBuilder
    caller: Caller
    policy: AccessPolicy
    honour_objection: bool
    today: datetime = field(default_factory=lambda: datetime.now(UTC))
    named: dict[str, Any] = field(default_factory=dict)
    clauses: dict[Any, ColumnElement[bool]] = field(default_factory=dict)

    def read_statement(self, resource_type: str, dialect: Any) -> CompiledRead:
        """The compiled read by id of a type under this reach (made once per reach, type and database)."""
        return self.compiled_once(("read", resource_type, self.honour_objection),
                                  lambda: CompiledRead.read_of(self, resource_type), dialect)

    def compiled_once(self, key: Any, statement: Callable[[], Any], dialect: Any,
                      variable: tuple[str, ...] = ("reach_read_id",)) -> CompiledRead:
        """A hot-path statement of this reach, built by `statement` and compiled once per database (the
        parameters named in `variable` bound, the rest written into its text)."""
        key = (key, dialect.name)
        found = self.named.get(key)
        if found is None:
            found = self.named[key] = CompiledRead.compiled(statement(), dialect, variable)
        return found

    def holding(self, patient_id: str) -> Select:
        """A statement finding the Patient `patient_id` if the organisation holds them (and no objection
        hides them)."""
        row = resources
        statement = select(row.c.pk).where(row.c.type == "Patient", row.c.id == patient_id, row.c.deleted.is_(False))
        if not self.policy.whole_record:
            statement = statement.where(self.holds_patient(row))
        if self.honour_objection:
            statement = statement.where(not_(self.objecting_person(row.c.id)))
        return statement

    def objecting_person(self, person: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether the person whose Patient id is `person` (a column or a value) objects so as to be hidden
        from this caller: a kept objection row of theirs whose Consent this organisation did not record."""
        if not self.honour_objection:
            return false()
        kept = reach_objections.alias("objection")
        return probed(select(kept.c.consent_pk)
                .where(kept.c.patient == person, not_(self.recorded_here(kept.c.consent_pk))))

    def recorded_here(self, consent_pk: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether the Consent `consent_pk` names the caller's organisation: one of its `organization` references
        is to a live Organization carrying the caller's identifier. On PostgreSQL the function
        `consent_recorded_by` (migration 0011) runs that query, planned once per session rather than in every
        statement carrying the reach; elsewhere it is written as probes of one table each, nested (this test sits
        in every objection test, and planning a join of its three tables cost more than running the statement)."""
        registry = self.builder.registry
        consent_key = registry.get("Consent", "organization").key  # type: ignore[union-attr]
        identifier_key = registry.get("Organization", "identifier").key  # type: ignore[union-attr]
        token = organization_token(self.caller.organization)
        system, code = predicates.token_parts(token)
        dialect = self.builder.dialect
        if dialect is not None and dialect.name == "postgresql" and code:
            return func.consent_recorded_by(consent_pk, consent_key, identifier_key,
                                            literal(system, String), literal(code, String), type_=Boolean)
        recorder, organization, named = (idx_reference.alias("recorder"), resources.alias("organization"),
                                         idx_token.alias("organization_identifier"))
        identified = probed(select(named.c.pk).where(
            named.c.pk == organization.c.pk, named.c.sp == identifier_key,
            predicates.token_clauses([token], named.c.system, named.c.code)))
        live = probed(select(organization.c.pk).where(organization.c.type == "Organization",
                                                      organization.c.id == recorder.c.tid,
                                                      organization.c.deleted.is_(False), identified))
        return probed(select(recorder.c.pk).where(
            recorder.c.pk == consent_pk, recorder.c.sp == consent_key, recorder.c.ttype == "Organization", live))

    @property
    def may_break_glass(self) -> bool:
        """Whether objections hide people from this caller and its kind may break the glass: then what
        an objection withholds is announced as `suppressed` (never shown as data)."""
        return self.honour_objection and self.policy.break_glass

    def without_objection(self) -> Reach:
        """This reach as it would be if no objection stood (to tell what objections withhold)."""
        if "opened" not in self.named:
            self.named["opened"] = Reach(self.builder, self.caller, self.policy, False, self.today, self.named)
        return self.named["opened"]

    @property
    def unrestricted(self) -> bool:
        return (self.policy.whole_record and not self.honour_objection
                and self.caller.scopes.allows("r", "*") and not self.constrained_types())

    def reads_any(self, resource_type: str) -> bool:
        """Whether this caller may read anything of a type at all: its scopes grant read or search on it and its
        policy reaches some of it (the type's records of held people, a shared type, what its organisation owns).
        A chain's branch to a type it cannot read finds nothing; left out, it is not planned either."""
        if resource_type not in self.candidate_types((resource_type,)):
            return False
        if not any(self.caller.scopes.allows(letter, resource_type) for letter in READ_LETTERS):
            return False
        policy = self.policy
        if policy.whole_record or resource_type in OWNED_TYPES:
            return True
        if resource_type in self.builder.compartment:
            return bool(policy.patients) and policy.reads_record_type(resource_type)
        return policy.reads_shared(resource_type)

    def constrained_types(self) -> list[str]:
        return sorted({s.type for s in self.caller.scopes.scopes if s.constraints})

    def clause(self, row: FromClause, types: tuple[str, ...] | None = None, *,
               reading: bool = True, counting: bool = False) -> ColumnElement[bool] | None:
        """Whether the row is a resource this caller reaches; `types` narrows it when the row's type is known.
        For writes (`reading` False) the read scopes do not count: what a write may touch is the policy's reach
        and objections; its own letters are checked per type before it. A statement that reads every match (a
        count: `counting`) may have the holder's people joined whole; any other tests them row by row. Over a row
        other than `resources` itself it is the reach built once, tested on that row's key (`keyed`)."""
        if self.unrestricted or (not reading and self.policy.whole_record and not self.honour_objection):
            return None
        if row is resources:  # the common case: built once per reach, reused by every statement
            key = (types, reading, counting, self.honour_objection)
            found = self.clauses.get(key)
            if found is None:
                found = self.clauses[key] = self.written(row, self.build(row, types, reading, counting))
            return found
        if reading and not counting:  # another row (a chain's targets, _has's sources): the kept reach, by its key
            return self.keyed(types)(row.c.pk)
        return self.build(row, types, reading, counting)

    def keyed(self, types: tuple[str, ...] | None) -> Callable[[Any], ColumnElement[bool]]:
        """The read reach as a test of a resource's key (a column of an index table naming a live resource of
        `types`, or a resources row's own key): what `clause` is over the resources row of that key (built once
        per reach and types). Of one type but Patient, it is the reach's SQL text written around the key, the
        type known (see `around_key`; not where a scope's search constraints test the type: a criterion's own
        index tables, unaliased, would then sit around the key); else a probe of the resources row of that key."""
        key = ("keyed", types, self.honour_objection)
        found = self.named.get(key)
        if found is None:
            found = self.named[key] = self.keyed_test(types)
        return found

    def keyed_test(self, types: tuple[str, ...] | None) -> Callable[[Any], ColumnElement[bool]]:
        row = resources.alias(KEY_ROW)
        clause = self.build(row, types, True)
        dialect = self.builder.dialect
        constrained = set(self.constrained_types())
        if (dialect is not None and types is not None and len(types) == 1 and types[0] != "Patient"
                and not constrained & {types[0], "*"}):  # a scope's constraints may read the row's own tables
            parts = around_key(row, clause, types[0], dialect)
            if parts is not None:
                return lambda pk: KeyedClause(pk, parts)
        written = self.written(row, clause)
        return lambda pk: probed(select(row.c.pk).where(row.c.pk == pk, written))

    def written(self, row: FromClause, clause: ColumnElement[bool]) -> ColumnElement[bool]:
        """A kept clause as the SQL text it compiles to, written once (see `precompiled`); the clause itself when
        the database is not known."""
        dialect = self.builder.dialect
        return clause if dialect is None else precompiled(row, clause, dialect)

    def build(self, row: FromClause, types: tuple[str, ...] | None, reading: bool,
              counting: bool = False) -> ColumnElement[bool]:
        folded = self.honour_objection and not self.policy.whole_record and not counting
        parts = [self.held(row, types, reading, counting, unobjected=folded)]
        scope_types = self.scope_clause(row, types) if reading else None
        if scope_types is not None:
            parts.append(scope_types)
        if self.honour_objection and not folded:
            parts.append(not_(self.objecting(row, types)))
        return and_(*parts)

    # -------------------------------------------------------------------- pieces

    def candidate_types(self, types: tuple[str, ...] | None) -> list[str]:
        """The types a row may have; never AuditEvent (the audit trail is served from its own tables)."""
        supported = self.builder.registry.types.supported
        return [t for t in (sorted(types) if types else sorted(supported)) if t != "AuditEvent"]

    def held(self, row: FromClause, types: tuple[str, ...] | None, reading: bool = True,
             counting: bool = False, unobjected: bool = False) -> ColumnElement[bool]:
        """The policy's half: the records of the people the organisation holds, and the shared types. Each
        candidate is tested on its own (its patient, found through its compartment references, must be in the
        holder's kept rows), so a read costs two index probes however many people the organisation holds; a
        count (`counting`) lets the database join the holder's people whole instead when that is cheaper.
        With `unobjected` (not for a count), a record is held only if no objection hides its person, and that is
        tested only once it is found held: a search as a practice reads ten candidates for each it keeps, and
        PostgreSQL orders two tests of a row by their estimated cost, which put the objection's first."""
        policy = self.policy
        compartment = self.builder.compartment
        if policy.whole_record:
            return true()
        in_record = policy.reads_record_type if reading else policy.writes_record_type
        shared = policy.reads_shared if reading else policy.writes_shared
        record_types = [t for t in self.candidate_types(types) if t in compartment and in_record(t)]
        shared_types = [t for t in self.candidate_types(types) if t not in compartment and shared(t)]
        branches: list[ColumnElement[bool]] = []
        if "Patient" in record_types:
            branches.append(and_(row.c.type == "Patient", self.holds_patient(row, counting, unobjected)))
        members = [t for t in record_types if t != "Patient"]
        if members and self.policy.patients:
            member = idx_compartment.alias("member_of")
            kept = reach_people.alias("held")
            linked = (select(member.c.pk)
                      .select_from(member.join(kept, and_(kept.c.holder == self.holder,
                                                          kept.c.patient == member.c.patient)))
                      .where(member.c.pk == row.c.pk))
            found = linked.exists() if counting else probed(linked)
            if unobjected:  # CASE: the database evaluates its test before its answer, never the other way round
                found = case((found, not_(self.objecting_member(row.c.pk))), else_=false())
            branches.append(and_(type_in(row, members), found))
        if shared_types:
            branches.append(type_in(row, shared_types))
        if OWNED_TYPES & set(self.candidate_types(types)):
            branches.append(self.owned(row))
        return or_(*branches) if branches else false()

    def owned(self, row: FromClause) -> ColumnElement[bool]:
        """Subscriptions its organisation created (their owner is kept in `subscriptions`)."""
        owner = subscriptions.alias("owner")
        return and_(row.c.type == "Subscription",
                    select(owner.c.id).where(owner.c.id == row.c.id, owner.c.owner_holder == self.holder).exists())

    @property
    def holder(self) -> str:
        """The name of the rows of the people this caller's organisation holds (`holdings.py`)."""
        return holder_key(self.policy, self.caller.organization)

    def holds_patient(self, patient: FromClause, counting: bool = False,
                      unobjected: bool = False) -> ColumnElement[bool]:
        """Whether a Patient row is one of the people the organisation holds (its kept rows); with `unobjected`,
        and no objection of theirs hides them (tested on the kept row found)."""
        if not self.policy.patients:
            return false()
        return held_clause(self.holder, patient.c.id, counting, self.objecting_person if unobjected else None)

    def scope_clause(self, row: FromClause, types: tuple[str, ...] | None) -> ColumnElement[bool] | None:
        """The scopes' half: types granted read or search, and the search constraints of v2 scopes."""
        scopes = self.caller.scopes
        wildcard = any(s.type == "*" and set(READ_LETTERS) & s.letters and not s.constraints for s in scopes.scopes)
        parts: list[ColumnElement[bool]] = []
        if not wildcard:
            granted = [t for t in self.candidate_types(types) if any(scopes.allows(letter, t)
                                                                      for letter in READ_LETTERS)]
            parts.append(type_in(row, granted) if granted else false())
        for resource_type in self.constrained_types():
            if types and resource_type not in types and resource_type != "*":
                continue
            allowed = self.constraint_clause(row, resource_type)
            if allowed is not None:
                parts.append(allowed if resource_type == "*" else or_(row.c.type != resource_type, allowed))
        return and_(*parts) if parts else None

    def constraint_clause(self, row: FromClause, resource_type: str) -> ColumnElement[bool] | None:
        """For each read letter whose granting scopes all carry constraints, OR over those scopes of AND over
        their constraints; all of them must hold (the stricter reading: a constrained search is never widened
        by an unconstrained read). A constraint the server cannot apply grants nothing. None: no constraint."""
        parts = []
        for letter in READ_LETTERS:
            options = self.caller.scopes.constraints(letter, resource_type)
            if not options:  # None: granted without constraints; []: not granted by this letter
                continue
            alternatives = []
            for constraints in options:
                try:
                    criteria = self.builder.criteria(resource_type, list(constraints), strict_scope=True)
                except FhirError:
                    alternatives.append(false())
                    continue
                alternatives.append(and_(*(predicates.build(c, row, self.builder.context) for c in criteria)))
            parts.append(or_(*alternatives))
        return and_(*parts) if parts else None

    def objecting(self, row: FromClause, types: tuple[str, ...] | None = None) -> ColumnElement[bool]:
        """The row belongs to a person whose objection to sharing hides them from this caller."""
        members = [t for t in self.candidate_types(types) if t in self.builder.compartment and t != "Patient"]
        branches = []
        if "Patient" in self.candidate_types(types):
            branches.append(and_(row.c.type == "Patient", self.objecting_person(row.c.id)))
        if members:  # tested per row (its few compartment rows against the kept objections)
            branches.append(and_(type_in(row, members), self.objecting_member(row.c.pk)))
        return or_(*branches) if branches else false()

    def objecting_member(self, pk: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether a record in the Patient compartment (its key `pk`) belongs to a person whose objection hides
        them from this caller: one of its compartment rows names a person with a kept objection that this
        organisation did not record."""
        member = idx_compartment.alias("objected")
        kept = reach_objections.alias("objection")
        return probed(select(member.c.pk)
                      .select_from(member.join(kept, kept.c.patient == member.c.patient))
                      .where(member.c.pk == pk, not_(self.recorded_here(kept.c.consent_pk))))


def written_in(statement: Any, variable: frozenset[str], dialect: Any) -> Any:
    """The statement with every bound value but those named in `variable` marked to be written into its text
    as a literal when compiled (values the server fixed, never a client's; a type without a literal form stays
    bound)."""

    def fixed(element: Any) -> Any:
        if (isinstance(element, BindParameter) and element.key not in variable and not element.literal_execute
                and element.type.literal_processor(dialect) is not None):
            return bindparam(element.key, element.value, type_=element.type, literal_execute=True, unique=True)
        return None

    return replacement_traverse(statement, {}, fixed)


def precompiled(row: FromClause, clause: ColumnElement[bool], dialect: Any) -> ColumnElement[bool]:
    """A clause over `row` as the SQL text it compiles to for `dialect`, every value in it written as a literal
    (all are the server's own: type names, parameter keys, the holder's name, policy codes): a statement carrying
    it is built, cached and run without the SQL toolkit walking the reach's hundred elements at every execution
    for its cache key and parameters. It reads `row` by the name `row` renders as in any statement that selects
    from it (the table's name, or the alias's). The clause itself when one of its values has no literal form."""
    body = where_text(row, clause, dialect)
    if body is None:
        return clause
    if dialect.paramstyle in ("format", "pyformat"):
        body = body.replace("%%", "%")  # written once more when the statement carrying it is compiled
    return literal_column(f"({body})")  # untyped: SQLite would compare a Boolean's text to 1


def where_text(row: FromClause, clause: ColumnElement[bool], dialect: Any) -> str | None:
    """A clause over `row` as `dialect` compiles it in a statement selecting from `row` alone, every value written
    as a literal (None when one has no literal form, or the clause reads a table other than `row` outside its
    own subqueries)."""
    try:
        compiled = select(row.c.pk).where(clause).compile(
            dialect=dialect, compile_kwargs={"literal_binds": True, "render_postcompile": True})
    except (CompileError, NotImplementedError):
        return None
    head, found, body = compiled.string.partition(" \nWHERE ")
    return body if found and head == select(row.c.pk).compile(dialect=dialect).string else None


def around_key(row: FromClause, clause: ColumnElement[bool], resource_type: str,
               dialect: Any) -> tuple[str, ...] | None:
    """A clause over `row` as the SQL text it compiles to, for a row known to be of `resource_type`: the row's type
    written as that name and the text split where the row's key goes (a test of a key without reading its
    resources row). Both are put in place in the clause before it is compiled, the key as a name made fresh for
    the purpose, so no value written in the text is ever taken for either. None when the clause reads anything
    else of the row, or holds a value with no literal form."""
    if not TYPE_NAME.fullmatch(resource_type):
        return None
    marker = f"reach_key_{uuid.uuid4().hex}"
    other: list[str] = []

    def put_in_place(element: Any) -> Any:
        if isinstance(element, ColumnClause) and element.table is row:
            if element.key == "pk":
                return literal_column(marker)
            if element.key == "type":
                return literal_column(f"'{resource_type}'")
            other.append(element.key)
        return None

    body = where_text(row, replacement_traverse(clause, {}, put_in_place), dialect)
    if body is None or other or marker not in body or f"{KEY_ROW}." in body:
        return None
    return tuple(body.split(marker))


class KeyedClause(ColumnElement[bool]):
    """The reach around a resource's key: the SQL text `around_key` wrote, the key rendered where it goes."""

    inherit_cache = True
    _traverse_internals = [("key", InternalTraversal.dp_clauseelement), ("parts", InternalTraversal.dp_plain_obj)]

    def __init__(self, key: ColumnElement[Any], parts: tuple[str, ...]) -> None:
        self.key = key
        self.parts = parts

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.key._from_objects


@compiles(KeyedClause)
def render_keyed(element: KeyedClause, compiler: Any, **kw: Any) -> str:
    key = compiler.process(element.key, **kw)
    table = key.rpartition(".")[0]
    if table and re.search(rf"\b(?:FROM|JOIN) {re.escape(table)}\b(?! AS )", "".join(element.parts)):
        # the text reads the key's own table unaliased: the key's name would mean that table's row there
        raise CompileError(f"the reach's text reads {table} unaliased around a key of it")
    return "(" + key.join(element.parts) + ")"


def probed(statement: Select) -> ColumnElement[bool]:
    """Whether a statement correlated with a row finds anything, tested row by row: written as a scalar
    subquery (first row or NULL), never as EXISTS, which PostgreSQL may turn into a join that first gathers
    every row the statement could find for any row (an organisation's whole compartment, hashed, before a
    page ordered by an index could stop after its first rows)."""
    return statement.limit(1).scalar_subquery().is_not(None)


def type_in(row: FromClause, types: list[str]) -> ColumnElement[bool]:
    """The row's type is one of `types`: resource type names (letters only) written into the statement, so a
    list of sixty types costs nothing per execution (bound, each would be rendered and sent every time)."""
    if len(types) == 1:
        return row.c.type == types[0]
    if all(TYPE_NAME.fullmatch(t) for t in types):
        return row.c.type.in_([literal_column(f"'{t}'") for t in types])
    return row.c.type.in_(types)


def record_compartment(r4_compartment: dict[str, list[str]], book: PolicyBook) -> dict[str, list[str]]:
    """The record's Patient compartment: R4's, with the members `profiles/access/compartment.yaml` adds."""
    compartment = {**r4_compartment}
    for resource_type, params in book.compartment.items():
        compartment[resource_type] = sorted(set(compartment.get(resource_type, [])) | set(params))
    compartment.setdefault("Patient", ["link"])
    return compartment


@dataclass
class ReachBuilder:
    """Builds callers' reaches from the policy book with the search engine's parser and predicates."""

    registry: SearchParamRegistry
    context: SearchContext
    book: PolicyBook
    r4_compartment: dict[str, list[str]]
    compartment: dict[str, list[str]] = field(init=False)
    dialect: Any = None
    """The database's SQL dialect: kept clauses are written as its SQL text once (None: kept as clauses)"""
    reaches: dict[Any, Reach] = field(init=False, default_factory=dict)
    last: tuple[Caller, Reach | None, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.compartment = record_compartment(self.r4_compartment, self.book)
        self.context = replace(self.context, reach=None)

    def reach(self, caller: Caller) -> Reach | None:
        """The reach of a caller (None for an unrestricted one). Callers with the same kind, organisation,
        scopes and break-glass state share one (its SQL built once a day: relationships name dates). The last
        caller's answer is kept for a second: a request asks for its caller's reach as its unit opens and again
        inside it."""
        now = time.monotonic()
        last = self.last
        if last is not None and last[0] is caller and now < last[2]:
            return last[1]
        found = self.shared_reach(caller)
        self.last = (caller, found, now + 1.0)
        return found

    def shared_reach(self, caller: Caller) -> Reach | None:
        policy = self.book.policy(caller.kind)
        breaking = caller.break_glass is not None and policy.break_glass
        honour = policy.objection == "honoured" and not breaking
        today = datetime.now(UTC)
        key = (caller.kind, caller.organization, caller.scopes, honour, today.date())
        found = self.reaches.get(key)
        if found is None:
            found = Reach(self, caller, policy, honour, today)
            if len(self.reaches) >= MAX_KEPT_REACHES:
                self.reaches.pop(next(iter(self.reaches)), None)
            self.reaches[key] = found
        return None if found.unrestricted else found

    def compartment_keys(self, types: list[str]) -> list[int]:
        keys = []
        for resource_type in types:
            for code in self.compartment.get(resource_type, []):
                param = self.registry.get(resource_type, code)
                if param is not None and param.type == "reference":
                    keys.append(param.key)
        return keys or [0]

    def criteria(self, resource_type: str, params: list[tuple[str, str]], strict_scope: bool = False) -> list[Any]:
        """Parsed criteria of a policy's or scope's search (strict: a bad policy fails loudly; a scope's
        constraint the server cannot apply raises, for the scope to grant nothing)."""
        if strict_scope:
            if resource_type == "*":
                raise FhirError(400, [Issue("not-supported", "search constraints need a resource type")])
            return QueryParser(self.registry, (resource_type,), strict=True).parse(params).criteria
        try:
            return QueryParser(self.registry, (resource_type,), strict=True).parse(params).criteria
        except FhirError as exc:
            raise FhirError(500, [Issue("exception", f"The access policy's search {resource_type}?{params} "
                                                     f"is not valid: {exc}")]) from exc

    def matching(self, resource_type: str, params: list[tuple[str, str]]) -> Select:
        """The keys of the live resources of a type a policy's search matches."""
        source = resources.alias()
        criteria = self.criteria(resource_type, params)
        return select(source.c.pk).where(source.c.type == resource_type, source.c.deleted.is_(False),
                                         *(predicates.build(c, source, self.context) for c in criteria))

    def objections(self) -> Select:
        """(Patient id, Consent pk) of every standing objection: the rows `reach_objections` keeps."""
        consent = self.registry.get("Consent", "patient")
        ref = idx_reference.c
        return select(ref.tid, ref.pk).distinct().where(
            ref.sp == consent.key, ref.ttype == "Patient",  # type: ignore[union-attr]
            ref.pk.in_(self.matching("Consent", OBJECTION)))


@dataclass(frozen=True)
class CompiledRead:
    """The read-by-id statement of one reach and type, compiled once: its text and its fixed parameters,
    run straight on the driver with the id filled in (the statement cache and parameter building of the
    SQL toolkit cost more than the read itself)."""

    sql: str
    params: dict[str, Any]
    order: tuple[str, ...]

    @staticmethod
    def read_of(reach: Reach, resource_type: str) -> Select:
        """The read by id of a type under a reach (the id is the parameter `reach_read_id`)."""
        from ..schema import resource_versions

        return (
            select(resources.c.version, resources.c.updated, resources.c.deleted, resource_versions.c.body,
                   resources.c.pk)
            .join(resource_versions, and_(resource_versions.c.pk == resources.c.pk,
                                          resource_versions.c.version == resources.c.version))
            .where(resources.c.type == resource_type,
                   resources.c.id == bindparam("reach_read_id", value="", type_=String),
                   reach.clause(resources, (resource_type,)))
        )

    @classmethod
    def compiled(cls, statement: Any, dialect: Any, variable: tuple[str, ...] = ("reach_read_id",)) -> CompiledRead:
        """A statement compiled for a database: the parameters named in `variable` stay bound (filled in by
        `arguments`); every other value (type names, parameter keys, policy codes) is written into the text,
        so an execution sends, converts and plans with only what varies."""
        compiled = written_in(statement, frozenset(variable), dialect).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True})
        order = tuple(compiled.positiontup or ())
        return cls(compiled.string, dict(compiled.params), order)

    def run(self, connection: Any, resource_id: str | None = None, **values: Any) -> Any:
        """Run it straight on a driver cursor with these parameters; returns the cursor, whose rows are to be
        read before the next hot-path statement runs on the connection: one cursor is kept per driver connection
        (making one cost more than the statement's own parameters)."""
        pooled = connection.connection
        cursor = pooled.info.get(HOT_CURSOR)
        if cursor is None or getattr(cursor, "closed", False):
            cursor = pooled.info[HOT_CURSOR] = pooled.driver_connection.cursor()
        cursor.execute(self.sql, self.arguments(resource_id, **values))
        return cursor

    def arguments(self, resource_id: str | None = None, **values: Any) -> Any:
        """The parameters to run it with (`resource_id` fills `reach_read_id`, `values` others by name): named
        for pyformat drivers, in order for qmark drivers."""
        params = {**self.params, **values}
        if resource_id is not None:
            params["reach_read_id"] = resource_id
        return tuple(params[name] for name in self.order) if self.order else params
