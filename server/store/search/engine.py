"""The search engine: runs parsed searches over the index tables, with sorting, paging and includes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    func,
    literal,
    nulls_last,
    select,
    union,
    union_all,
)

from ...fhir.outcome import bad_request
from ...fhir.searchparams import SearchParamRegistry
from ..among import among
from ..indexer import TOKEN_MAX
from ..schema import (
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resources,
)
from . import predicates
from .criteria import Criteria, canonical_criteria
from .parse import Criterion, Include, QueryParser, SearchQuery

if TYPE_CHECKING:
    from ..repository import Repository, StoredResource
    from .reach import Reach

MAX_INCLUDE_ROUNDS = 4
SIMPLE_TOKEN = re.compile(r"^[^,|\\$]+\|[^,|\\$]+$")
MAX_INCLUDED = 2000
MAX_CONDITIONAL_MATCHES = 1000

SORT_COLUMNS: dict[str, tuple[FromClause, str, str]] = {
    "date": (idx_date, "lo", "hi"),
    "string": (idx_string, "norm", "norm"),
    "token": (idx_token, "code", "code"),
    "number": (idx_number, "value", "value"),
    "quantity": (idx_quantity, "value", "value"),
    "reference": (idx_reference, "tid", "tid"),
    "uri": (idx_uri, "value", "value"),
}


@dataclass(frozen=True)
class SortTerm:
    """One key of a search's order: a column, its direction, and whether its empty values go last."""

    column: ColumnElement[Any]
    descending: bool
    nulls_go_last: bool = False

    def clause(self, column: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
        """Its ORDER BY clause, over `column` when given (the same value as a subquery's column)."""
        value = self.column if column is None else column
        ordered = value.desc() if self.descending else value.asc()
        return nulls_last(ordered) if self.nulls_go_last else ordered


@dataclass
class SearchContext:
    """What predicate builders need: the registry, the server base URL, and value set membership
    (bundled terminology first, then ValueSets stored in the server)."""

    registry: SearchParamRegistry
    base_url: str
    terminology: Any
    repo: Repository | None = None
    reach: Reach | None = None
    confine: Callable[[Any], ColumnElement[bool]] | None = None  # the reach, tested on a criterion's own keys

    def reached(self, row: FromClause, types: tuple[str, ...] | None = None,
                counting: bool = False) -> ColumnElement[bool] | None:
        """The caller's reach over a resources row (None when the caller reaches everything); `counting`: for a
        statement that reads every match (see `Reach.clause`)."""
        return None if self.reach is None else self.reach.clause(row, types, counting=counting)

    def key_reach(self, types: tuple[str, ...] | None) -> Callable[[Any], ColumnElement[bool]] | None:
        """The caller's reach as a test of a live resource's key (None when the caller reaches everything)."""
        if self.reach is None or self.reach.unrestricted:
            return None
        return self.reach.keyed(types)

    @property
    def postgres(self) -> bool:
        """Whether statements go to PostgreSQL (lists become one array parameter there)."""
        return self.repo is not None and self.repo.postgres

    def value_sets(self, values: list[str], name: str) -> list[Any]:
        """Compiled value sets (codes per system, whole systems) for `:in` / `:not-in` values."""
        found = []
        for url in values:
            compiled = self.terminology.value_set(url) if self.terminology is not None else None
            if compiled is None and self.repo is not None:
                compiled = stored_value_set(self.repo, url)
            if compiled is None:
                raise bad_request(f"ValueSet {url!r} in '{name}' is not known to this server", name,
                                  code="not-found")
            found.append(compiled)
        return found


def stored_value_set(repo: Repository, url: str) -> Any:
    """A ValueSet held in the store (and the CodeSystems it draws on), compiled; None if absent."""
    from ...fhir.profiles.terminology import Terminology

    canonical = url.split("|", 1)[0]
    value_sets = [s.json() for s in repo.fetch_many([pk for pk, _id in repo.find("ValueSet", f"url={canonical}",
                                                                               what=":in")]).values()]
    if not value_sets:
        return None
    systems = {include.get("system") for vs in value_sets for include in vs.get("compose", {}).get("include", [])}
    code_systems = []
    for system in sorted(s for s in systems if s):
        matches = repo.find("CodeSystem", f"url={system}", what=":in")
        code_systems.extend(stored.json() for stored in repo.fetch_many([pk for pk, _id in matches]).values())
    return Terminology(code_systems, value_sets[:1], []).value_set(canonical)


@dataclass
class SearchResult:
    """A page of matches, the included resources, and what is needed to build the Bundle."""

    query: SearchQuery
    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    has_next: bool = False
    last_key: int | None = None
    suppressed: bool = False


SEARCHES_PER_STATEMENT = 25


class SearchEngine:
    """Builds and runs SQL for searches; shared, stateless between requests."""

    def __init__(self, registry: SearchParamRegistry, base_url: str, terminology: Any,
                 compartment: dict[str, list[str]]) -> None:
        self.registry = registry
        self.context = SearchContext(registry, base_url.rstrip("/"), terminology)
        self.compartment = compartment
        self.compartment_owners = frozenset({"Patient"})

    # -------------------------------------------------------------- entry points

    def parse(self, resource_types: tuple[str, ...], params: list[tuple[str, str]], strict: bool) -> SearchQuery:
        return QueryParser(self.registry, resource_types, strict).parse(params)

    def search(self, repo: Repository, resource_type: str | None, params: list[tuple[str, str]], *,
               strict: bool = False, compartment: tuple[str, str] | None = None,
               base_url: str | None = None) -> SearchResult:
        types = self.types_for(resource_type, params)
        query = self.parse(types, params, strict)
        extra: list[ColumnElement[bool]] = []
        if compartment is not None:
            extra.append(self.compartment_predicate(resources, types, *compartment))
        context = replace(self.context, repo=repo, reach=repo.reach)
        if base_url and not context.base_url:
            context = replace(context, base_url=base_url.rstrip("/"))
        return self.run(repo, query, extra, context, one_person=compartment is not None)

    def criteria(self, resource_type: str, text: str, where: str, expression: str | None = None) -> Criteria:
        """The canonical form of a conditional criterion (see `criteria.canonical_criteria`)."""
        return canonical_criteria(self.registry, resource_type, text, where, expression)

    def match_criteria(self, repo: Repository, criteria: Criteria, *, what: str) -> list[tuple[int, str]]:
        """(pk, id) of current resources matching conditional criteria (strict: unknown params refused)."""
        query = self.parse((criteria.resource_type,), list(criteria.pairs), strict=True)
        if not query.criteria:
            raise bad_request(f"{what} needs search criteria, not only result parameters")
        context = replace(self.context, repo=repo, reach=repo.reach)
        statement = self.filtered(query, [], context).with_only_columns(resources.c.pk, resources.c.id)
        rows = repo.connection.execute(statement.limit(MAX_CONDITIONAL_MATCHES + 1)).all()
        return [(row.pk, row.id) for row in rows]

    def matching_ids(self, repo: Repository, resource_type: str, searches: list[list[tuple[str, str]]]
                     ) -> list[set[str]]:
        """For each of several searches of one type (criteria only: `_id` and filters), the ids of the current
        resources it matches within the caller's reach, as `filtered` builds any search's statement: all of
        them in one statement per SEARCHES_PER_STATEMENT (a notification fan-out asks for a hundred at once)."""
        context = replace(self.context, repo=repo, reach=repo.reach)
        found: list[set[str]] = [set() for _ in searches]
        for start in range(0, len(searches), SEARCHES_PER_STATEMENT):
            branches = []
            for index in range(start, min(start + SEARCHES_PER_STATEMENT, len(searches))):
                query = self.parse((resource_type,), searches[index], strict=False)  # as `search` parses
                branches.append(self.filtered(query, [], context, self.fold_composites(query))
                                .with_only_columns(literal(index).label("search"), resources.c.id))
            statement = branches[0] if len(branches) == 1 else union_all(*branches)
            for index, resource_id in repo.connection.execute(statement):
                found[index].add(resource_id)
        return found

    def match_identifiers(self, repo: Repository, conditions: list[Criteria]) -> dict[Criteria, list[tuple[int, str]]]:
        """Resolve many conditions of the form `<token param>=<system>|<code>` in one query per
        (type, parameter); conditions of any other form are left out of the answer."""
        groups: dict[tuple[str, str], dict[tuple[str, str], list[Criteria]]] = {}
        for condition in conditions:
            resource_type = condition.resource_type
            if len(condition.pairs) != 1:
                continue
            name, value = condition.pairs[0]
            param = self.registry.get(resource_type, name)
            if param is None or param.type != "token" or not SIMPLE_TOKEN.match(value):
                continue
            system, code = (part[:TOKEN_MAX] for part in value.split("|"))
            groups.setdefault((resource_type, name), {}).setdefault((system, code), []).append(condition)
        found: dict[Criteria, list[tuple[int, str]]] = {}
        t = idx_token.c
        # index rows exist only for live current versions and their key names the type: no join needed
        lookup = select(t.system, t.code, t.pk, resources.c.id).join(resources, resources.c.pk == t.pk)
        reached = replace(self.context, reach=repo.reach).reached(resources)
        if reached is not None:
            lookup = lookup.where(reached)
        for (resource_type, name), wanted in groups.items():
            key = self.registry.get(resource_type, name).key  # type: ignore[union-attr]
            matches: dict[tuple[str, str], list[tuple[int, str]]] = {}
            by_system: dict[str, list[str]] = {}
            for system, code in sorted(wanted):
                by_system.setdefault(system, []).append(code)
            for system, codes in by_system.items():
                for start in range(0, len(codes), 500):
                    statement = lookup.where(t.sp == key, t.system == system,
                                             among(t.code, codes[start:start + 500], repo.postgres))
                    for row in repo.connection.execute(statement):
                        matches.setdefault((row.system, row.code), []).append((row.pk, row.id))
            for pair, same in wanted.items():
                for condition in same:
                    found[condition] = sorted(set(matches.get(pair, [])))
        return found

    def types_for(self, resource_type: str | None, params: list[tuple[str, str]]) -> tuple[str, ...]:
        if resource_type:
            return (resource_type,)
        requested = [t.strip() for name, value in params if name == "_type" for t in value.split(",") if t.strip()]
        for name in requested:
            if name not in self.registry.types.supported:
                raise bad_request(f"Unknown resource type '{name}' in _type", "_type")
        return tuple(dict.fromkeys(requested)) or tuple(sorted(self.registry.types.supported))

    # --------------------------------------------------------------------- SQL

    def filtered(self, query: SearchQuery, extra: list[ColumnElement[bool]], context: SearchContext | None = None,
                 criteria: list[Criterion] | None = None, counting: bool = False,
                 reach_matches: bool = True) -> Select:
        """The search's statement: the keys of the resources its criteria match within the caller's reach.
        The reach is tested where the resources are found: on the keys of the first criterion that confines
        the search to its own index rows, when there is one and every match is not to be read (not a count),
        so a page read off that index in key order stops at its last row; else on the resources row. Without
        `reach_matches` the caller tests it on the matches outside this statement (the reach over a chain's
        targets or `_has`'s sources stays in it, as the criteria's own)."""
        context = context or self.context
        types = query.resource_types
        chosen = query.criteria if criteria is None else criteria
        clauses = list(extra)
        reached = context.reached(resources, types, counting) if reach_matches else None
        carrier = None
        if reached is not None and not counting:
            carrier = next((c for c in chosen if predicates.confines(c)), None)
        if reached is not None and carrier is None:
            clauses.append(reached)
        if not any(predicates.confines(c) for c in chosen):
            type_clause = resources.c.type == types[0] if len(types) == 1 else resources.c.type.in_(types)
            clauses[:0] = [type_clause, resources.c.deleted.is_(False)]
        for criterion in chosen:
            confined = context
            if criterion is carrier and context.reach is not None:
                confined = replace(context, confine=context.reach.keyed(types))
            clauses.append(predicates.build(criterion, resources, confined))
        return select(resources.c.pk).where(*clauses)

    def run(self, repo: Repository, query: SearchQuery, extra: list[ColumnElement[bool]],
            context: SearchContext | None = None, *, one_person: bool = False) -> SearchResult:
        """A page of a search (`one_person`: the search is confined to one patient's compartment)."""
        context = context or self.context
        criteria = self.fold_composites(query)
        if query.summary == "count" or query.count == 0 or query.total in ("accurate", "estimate"):
            counted = self.filtered(query, extra, context, criteria, counting=True)
            total = self.count(repo, counted) if query.total != "estimate" else self.estimate(repo, counted)
            if query.summary == "count" or query.count == 0:
                return SearchResult(query, [], [], total)
        else:
            total = None
        ordered = self.page_order(query, extra, context, criteria,
                                  one_person or any(predicates.names_one_person(c) for c in criteria))
        if query.after is not None and not query.sort:
            # key order: the next page starts after the last key of this one, however deep
            ordered = ordered.where(ordered.selected_columns[0] > query.after)
        else:
            ordered = ordered.offset(query.offset)
        rows = repo.connection.execute(ordered.limit(query.count + 1)).scalars().all()
        has_next = len(rows) > query.count
        pks = list(rows[:query.count])
        fetched = repo.fetch_many(pks, query.resource_types)
        matches = [fetched[pk] for pk in pks if pk in fetched]
        if total is None and query.total != "none" and query.offset == 0 and not has_next:
            total = len(matches)
        included = self.includes(repo, query.includes, pks, matches) if query.includes and matches else []
        result = SearchResult(query, matches, included, total, has_next, pks[-1] if pks and not query.sort else None)
        result.suppressed = self.withheld(repo, query, extra, context, criteria)
        return result

    def withheld(self, repo: Repository, query: SearchQuery, extra: list[ColumnElement[bool]],
                 context: SearchContext, criteria: list[Criterion]) -> bool:
        """Whether a standing objection withheld matches from a caller who may break the glass."""
        reach = context.reach
        if reach is None or not reach.may_break_glass:
            return False
        opened = replace(context, reach=reach.without_objection())
        statement = self.filtered(query, extra, opened, criteria).where(reach.objecting(resources))
        return repo.connection.execute(statement.limit(1)).first() is not None

    def fold_composites(self, query: SearchQuery) -> list[Criterion]:
        """`code=X&value-quantity=gtN` becomes `code-value-quantity=X$gtN` when a composite parameter of
        the type pairs exactly those two (on the resource itself): one index row answers both."""
        criteria = list(query.criteria)
        if len(query.resource_types) != 1:
            return criteria
        resource_type = query.resource_types[0]
        for composite in self.registry.params(resource_type).values():
            if composite.type != "composite" or len(composite.components) != 2 \
                    or composite.expression != resource_type:
                continue
            parts = [self.registry.component_param(composite, c) for c in composite.components]
            if any(p is None for p in parts):
                continue
            found = [simple_criterion(criteria, p.code) for p in parts]  # type: ignore[union-attr]
            if any(c is None for c in found) or parts[0].type != "token":  # type: ignore[union-attr]
                continue
            first, second = found  # type: ignore[misc]
            value = f"{first.values[0]}${second.values[0]}"
            criteria = [c for c in criteria if c is not first and c is not second]
            criteria.append(Criterion(composite, composite.code, None, [value], resource_types=query.resource_types,
                                      raw=(composite.code, value)))
        return criteria

    def page_order(self, query: SearchQuery, extra: list[ColumnElement[bool]], context: SearchContext,
                   criteria: list[Criterion], one_person: bool) -> Select:
        """The filtered search in its sort order, its page still to be cut. Sorted and confined to one person's
        records (`one_person`: a few hundred at most), the reach is tested on the matches in their order, behind
        a fence (`OFFSET 0`, which PostgreSQL neither pushes a test through nor pulls up), until the page is
        full: tested on every match before the sort, it ran some 300 times for a page of 20. Never for a
        population's search, whose matches, all sorted first, could be a region's."""
        if not query.sort and not extra:
            keyed = self.read_in_key_order(query, context, criteria)
            if keyed is not None:
                return keyed
        reach = context.key_reach(query.resource_types)
        if reach is None or not query.sort or not one_person:
            base, terms = self.ordered(query, extra, context, criteria)
            return base.order_by(*(term.clause() for term in terms))
        base, terms = self.ordered(query, extra, context, criteria, reach_matches=False)
        labels = [f"sort_{index}" for index in range(len(terms))]
        matches = (base.add_columns(*(term.column.label(label) for term, label in zip(terms, labels, strict=True)))
                   .order_by(*(term.clause() for term in terms)).offset(0).subquery("matches"))
        return (select(matches.c.pk).where(reach(matches.c.pk))
                .order_by(*(term.clause(matches.c[label]) for term, label in zip(terms, labels, strict=True))))

    def read_in_key_order(self, query: SearchQuery, context: SearchContext,
                          criteria: list[Criterion]) -> Select | None:
        """A page in key order, when the search's first criterion finds its index rows in key order and every
        other criterion has index rows of its own: the keys are read off the first one's rows (each names a live
        resource of the type, so no resources row is joined: PostgreSQL read the whole key index of resources
        up to the page's last key to join them), the caller's reach tested on each key, the other criteria as
        tests of the key. None for any other search."""
        if (not criteria or len(query.resource_types) != 1 or not predicates.in_key_order(criteria[0])
                or not all(predicates.confines(c) for c in criteria)):
            return None
        matched = predicates.matched_keys(criteria[0], replace(context, confine=None))
        if matched is None:
            return None
        found = matched.subquery("found")
        reach = context.key_reach(query.resource_types)
        tests = [] if reach is None else [reach(found.c.pk)]  # PostgreSQL tests it on each index row it reads
        rest = [predicates.build(c, found, context) for c in criteria[1:]]
        return select(found.c.pk).distinct().where(*tests, *rest).order_by(found.c.pk)

    def ordered(self, query: SearchQuery, extra: list[ColumnElement[bool]], context: SearchContext,
                criteria: list[Criterion], reach_matches: bool = True) -> tuple[Select, list[SortTerm]]:
        """The filtered search and its sort order (`reach_matches` as for `filtered`). A single sort on a
        parameter with one value per resource that the search also filters on becomes a join on that
        parameter's index row, carrying the filter, in index order - so a page is read straight off the index
        and the scan stops early."""
        if len(query.sort) == 1 and query.sort[0].param is not None:
            key = query.sort[0]
            params = [self.registry.get(t, key.name) for t in query.resource_types]
            on_key = [c for c in criteria if c.name == key.name and c.param is not None]
            if on_key and all(p is not None and p.single for p in params):
                table, low, high = SORT_COLUMNS[key.param.type]  # type: ignore[union-attr]
                row = table.alias()
                conditions = [predicates.row_condition(c, row, context) for c in on_key]
                if all(condition is not None for condition in conditions):
                    rest = [c for c in criteria if c not in on_key]
                    keys = [p.key for p in params if p is not None]
                    column = row.c[high] if key.descending else row.c[low]
                    terms = [SortTerm(column, key.descending), SortTerm(row.c.pk, key.descending)]
                    if not extra and all(predicates.confines(c) for c in rest):
                        # the index row names a live resource of its type: no resources row is read
                        # (PostgreSQL read one for each candidate before testing the reach on it)
                        reach = context.key_reach(query.resource_types) if reach_matches else None
                        clauses = [predicates.sp_match(row, keys), *conditions,
                                   *([] if reach is None else [reach(row.c.pk)]),
                                   *(predicates.build(c, row, context) for c in rest)]
                        return select(row.c.pk).where(*clauses), terms
                    join = and_(row.c.pk == resources.c.pk, predicates.sp_match(row, keys), *conditions)
                    base = self.filtered(query, extra, context, rest, reach_matches=reach_matches).select_from(
                        resources.join(row, join))
                    return base, terms
        return self.sorted(self.filtered(query, extra, context, criteria, reach_matches=reach_matches), query)

    def count(self, repo: Repository, base) -> int:
        return int(repo.connection.execute(select(func.count()).select_from(base.subquery())).scalar_one())

    def estimate(self, repo: Repository, base) -> int:
        connection = repo.connection
        if connection.dialect.name != "postgresql":
            return self.count(repo, base)
        compiled = base.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
        # straight to the driver with no parameters: as SQL text (`text()`), a value's ` :word` would be read as a
        # parameter to bind; psycopg turns the `%%` the compiler wrote for each `%` back into one
        raw = connection.connection.driver_connection
        plan = raw.execute("EXPLAIN (FORMAT JSON) " + str(compiled), ()).fetchone()[0]  # type: ignore[union-attr]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])

    def sorted(self, base: Select, query: SearchQuery) -> tuple[Select, list[SortTerm]]:
        """The sort keys, then the key. A parameter with one index row per resource is joined (an index lookup
        per candidate); others take the minimum or maximum of their rows."""
        terms = []
        joined = resources
        for key in query.sort:
            if key.name == "_id":
                column: Any = resources.c.id
            elif key.name == "_lastUpdated":
                column = resources.c.updated
            else:
                assert key.param is not None
                table, low, high = SORT_COLUMNS[key.param.type]
                keys = [p.key for t in query.resource_types if (p := self.registry.get(t, key.name)) is not None]
                single = all(p.single for t in query.resource_types if (p := self.registry.get(t, key.name)))
                if single:
                    row = table.alias()
                    joined = joined.outerjoin(row, and_(row.c.pk == resources.c.pk, predicates.sp_match(row, keys)))
                    column = row.c[high] if key.descending else row.c[low]
                else:
                    value = table.c[high] if key.descending else table.c[low]
                    aggregate = func.max(value) if key.descending else func.min(value)
                    column = (select(aggregate).where(table.c.pk == resources.c.pk, predicates.sp_match(table, keys))
                              .scalar_subquery())
            terms.append(SortTerm(column, key.descending, nulls_go_last=True))
        if joined is not resources:
            base = base.select_from(joined)
        return base, [*terms, SortTerm(resources.c.pk, False)]

    def compartment_predicate(self, row: FromClause, types: tuple[str, ...], compartment_type: str,
                              compartment_id: str) -> ColumnElement[bool]:
        """Membership of the compartment `compartment_type/compartment_id` (Patient compartment)."""
        keys = self.compartment_keys(types)
        if not keys:
            raise bad_request(f"No resources of {', '.join(types)} are in a {compartment_type} compartment")
        ref = idx_reference.c
        members = select(ref.pk).where(ref.tid == compartment_id, ref.ttype == compartment_type, ref.sp.in_(keys))
        return row.c.pk.in_(members)

    # ---------------------------------------------------------------- everything

    def compartment_keys(self, types: list[str] | tuple[str, ...]) -> list[int]:
        keys = []
        for type_name in types:
            for code in self.compartment.get(type_name, []):
                param = self.registry.get(type_name, code)
                if param is not None:
                    keys.append(param.key)
        return keys

    def everything(self, repo: Repository, patient_id: str, *, since: int | None, types: list[str],
                   count: int, offset: int) -> SearchResult:
        """A page of the patient and their compartment (by key), with the resources they refer to."""
        member_types = [t for t in (types or sorted(self.compartment)) if t in self.compartment]
        ref = idx_reference.c
        members = select(ref.pk).where(
            ref.tid == patient_id, ref.ttype == "Patient", ref.sp.in_(self.compartment_keys(member_types)))
        if not types or "Patient" in types:
            itself = select(resources.c.pk).where(resources.c.type == "Patient", resources.c.id == patient_id)
            members = union(members, itself)
        statement = select(resources.c.pk).where(resources.c.pk.in_(members), resources.c.deleted.is_(False))
        if types:
            statement = statement.where(resources.c.type.in_(types))
        if since is not None:
            statement = statement.where(resources.c.updated >= since)
        reach = replace(self.context, reach=repo.reach).key_reach(tuple(types) if types else None)
        if reach is not None:  # tested on the person's records in key order until the page is full (see page_order)
            fenced = statement.order_by(resources.c.pk).offset(0).subquery("members")
            statement = select(fenced.c.pk).where(reach(fenced.c.pk)).order_by(fenced.c.pk)
        else:
            statement = statement.order_by(resources.c.pk)
        rows = repo.connection.execute(statement.limit(count + 1).offset(offset)).scalars().all()
        pks = list(rows[:count])
        fetched = repo.fetch_many(pks)
        matches = [fetched[pk] for pk in pks if pk in fetched]
        referenced = select(ref.ttype, ref.tid).where(among(ref.pk, pks, repo.postgres),
                                                      ref.ttype.not_in(["Patient", ""]))
        targets: dict[str, set[str]] = {}
        for row in repo.connection.execute(referenced):
            if not types or row.ttype in types:
                targets.setdefault(row.ttype, set()).add(row.tid)
        seen = set(pks)
        included_pks: list[int] = []
        for ttype, ids in targets.items():
            if ttype in self.compartment:
                continue  # compartment types are members in their own right, on their own page
            found = repo.connection.execute(
                select(resources.c.pk).where(resources.c.type == ttype,
                                             among(resources.c.id, sorted(ids), repo.postgres),
                                             resources.c.deleted.is_(False))).scalars()
            included_pks.extend(pk for pk in found if pk not in seen)
        included = list(repo.fetch_many(included_pks).values())
        total = len(matches) if offset == 0 and len(rows) <= count else None
        return SearchResult(SearchQuery(("Patient",)), matches, included, total, len(rows) > count)

    # ------------------------------------------------------------------ includes

    def includes(self, repo: Repository, includes: list[Include], pks: list[int],
                 matches: list[StoredResource]) -> list[StoredResource]:
        seen = set(pks)
        included: list[StoredResource] = []
        frontier = list(zip(pks, matches, strict=False))
        first = True
        for _round in range(MAX_INCLUDE_ROUNDS):
            wanted = [inc for inc in includes if first or inc.iterate]
            if not wanted or not frontier:
                break
            found_pks: list[int] = []
            for include in wanted:
                found_pks.extend(self.include_pks(repo, include, frontier))
            new_pks = [pk for pk in dict.fromkeys(found_pks) if pk not in seen][:MAX_INCLUDED - len(included)]
            seen.update(new_pks)
            fetched = repo.fetch_many(new_pks)
            frontier = [(pk, fetched[pk]) for pk in new_pks if pk in fetched]
            included.extend(stored for _pk, stored in frontier)
            first = False
            if len(included) >= MAX_INCLUDED:
                break
        return included

    def include_pks(self, repo: Repository, include: Include, frontier: list[tuple[int, StoredResource]]
                    ) -> list[int]:
        ref = idx_reference.c
        sources = [(pk, stored) for pk, stored in frontier
                   if include.reverse or stored.type == include.source_type]
        if not sources:
            return []
        if include.param is not None:
            keys = [include.param.key]
        else:
            keys = [p.key for p in self.registry.params(include.source_type).values() if p.type == "reference"]
        if include.reverse:
            ids_by_type: dict[str, list[str]] = {}
            for _pk, stored in sources:
                ids_by_type.setdefault(stored.type, []).append(stored.id)
            found: list[int] = []
            for target_type, ids in ids_by_type.items():
                if include.target_type and include.target_type != target_type:
                    continue
                statement = (
                    select(ref.pk).join(resources, resources.c.pk == ref.pk)
                    .where(ref.sp.in_(keys), ref.ttype == target_type, among(ref.tid, ids, repo.postgres),
                           resources.c.type == include.source_type, resources.c.deleted.is_(False))
                )
                reached = replace(self.context, reach=repo.reach).reached(resources, (include.source_type,))
                if reached is not None:  # before the limit, so what is out of reach takes no place
                    statement = statement.where(reached)
                statement = statement.limit(MAX_INCLUDED)
                found.extend(repo.connection.execute(statement).scalars())
            return found
        statement = select(ref.ttype, ref.tid).where(among(ref.pk, [pk for pk, _s in sources], repo.postgres),
                                                     ref.sp.in_(keys))
        if include.target_type:
            statement = statement.where(ref.ttype == include.target_type)
        targets = {(row.ttype, row.tid) for row in repo.connection.execute(statement) if row.ttype}
        found = []
        by_type: dict[str, list[str]] = {}
        for ttype, tid in targets:
            by_type.setdefault(ttype, []).append(tid)
        for ttype, ids in by_type.items():
            statement = select(resources.c.pk).where(resources.c.type == ttype,
                                                     among(resources.c.id, ids, repo.postgres),
                                                     resources.c.deleted.is_(False))
            reached = replace(self.context, reach=repo.reach).reached(resources, (ttype,))
            found.extend(repo.connection.execute(statement if reached is None else statement.where(reached)).scalars())
        return found


def simple_criterion(criteria: list[Criterion], code: str) -> Criterion | None:
    """The one criterion on a parameter with no modifier, no chain and a single value, if there is one."""
    found = [c for c in criteria if c.name == code and c.param is not None]
    if len(found) != 1:
        return None
    criterion = found[0]
    if criterion.modifier or criterion.chain or len(criterion.values) != 1 or "$" in criterion.values[0]:
        return None
    return criterion
