"""SQL predicates for search criteria: one builder per parameter type, all over the index tables."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, FromClause, and_, false, not_, or_, select, true, tuple_, union_all
from sqlalchemy.sql import Select, operators
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.selectable import ScalarSelect

from ...fhir.dates import DateFormatError, now_us, parse_range
from ...fhir.outcome import bad_request
from ...fhir.searchparams import SearchParam
from ..among import among
from ..indexer import TOKEN_MAX, URI_MAX, normalise, parse_reference
from ..schema import (
    idx_composite,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resources,
)
from .parse import PREFIXES, Criterion, split_escaped, unescape

if TYPE_CHECKING:
    from .engine import SearchContext

DAY_US = 86_400_000_000


def keys_of(criterion: Criterion, ctx: SearchContext, suffix: str | None = None) -> list[int]:
    """The index keys of a criterion's parameter across every type searched."""
    keys = []
    for type_name in criterion.resource_types:
        param = ctx.registry.get(type_name, criterion.name)
        if param is not None:
            keys.append(param.derived_key(suffix) if suffix else param.key)
    return keys


def sp_match(table: FromClause, keys: list[int]) -> ColumnElement[bool]:
    return table.c.sp == keys[0] if len(keys) == 1 else table.c.sp.in_(keys)


def pk_in(row: FromClause, ctx: SearchContext, subquery: Select, negate: bool = False) -> ColumnElement[bool]:
    """The row is one of the resources `subquery` selects by key. Where the search has given the criterion the
    caller's reach to carry (`SearchContext.confine`), the subquery tests it on each key it finds."""
    if ctx.confine is not None and not negate and row is resources:
        subquery = subquery.where(ctx.confine(subquery.selected_columns[0]))
    clause = row.c.pk.in_(subquery)
    return not_(clause) if negate else clause


def split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def confines(criterion: Criterion) -> bool:
    """Whether the criterion holds only for live resources of its types: a positive match on their own index
    rows, which exist only for current, undeleted versions and whose keys name the type. A search with one
    such criterion needs no separate type and deletion checks - checks whose row estimates go badly wrong
    while a type is new to the planner's statistics (the first load of a fresh database)."""
    param = criterion.param
    return (criterion.special is None and not criterion.chain and param is not None
            and param.type in TABLES_BY_TYPE and criterion.modifier not in ("missing", "not", "not-in"))


def in_key_order(criterion: Criterion) -> bool:
    """Whether the criterion's own index rows are found in key order: one coded value with its system (equal
    leading columns of the token index, whose last is the key), or a composite whose first part names a code.
    A page in key order is then read straight off them, and stops at its last row."""
    param = criterion.param
    if not confines(criterion) or criterion.modifier or len(criterion.values) != 1 or param is None:
        return False
    value = criterion.values[0]
    if param.type == "token":
        system, code = token_parts(value)
        return bool(system) and bool(code)
    if param.type == "composite":
        return bool(token_parts(split_escaped_keep(value, "$")[0])[1])
    return False


def matched_keys(criterion: Criterion, ctx: SearchContext) -> Select | None:
    """The statement of a confining criterion's own index rows (the keys it matches; the caller's reach tested
    on each where the context carries it as `confine`), or None when the criterion is not of that shape."""
    clause = build(criterion, resources, ctx)
    if (isinstance(clause, BinaryExpression) and clause.operator is operators.in_op and clause.left is resources.c.pk
            and isinstance(clause.right, ScalarSelect) and isinstance(clause.right.element, Select)):
        return clause.right.element
    return None


def names_one_person(criterion: Criterion) -> bool:
    """Whether the criterion is a plain reference to one Patient (`patient=123`, `subject=Patient/123`): its
    matches are that person's records, a few hundred at most, never a population."""
    param = criterion.param
    if (criterion.special is not None or criterion.chain or param is None or param.type != "reference"
            or len(criterion.values) != 1):
        return False
    modifier, value = criterion.modifier, criterion.values[0]
    if modifier is not None:
        return modifier == "Patient" and "/" not in value
    kind, _, ident = value.rpartition("/")
    return bool(ident) and (kind == "Patient" if kind else param.targets == ("Patient",))


def build(criterion: Criterion, row: FromClause, ctx: SearchContext) -> ColumnElement[bool]:
    """The predicate (over the resources row `row`) for one criterion."""
    if criterion.special == "_id":
        return id_predicate(criterion, row, ctx.postgres)
    if criterion.special == "_lastUpdated":
        return last_updated_predicate(criterion, row)
    if criterion.special == "_has":
        return has_predicate(criterion, row, ctx)
    param = criterion.param
    assert param is not None
    if criterion.chain:
        return chain_predicate(criterion, row, ctx)
    table = TABLES_BY_TYPE.get(param.type)
    if table is None:
        raise bad_request(f"Search parameter '{param.code}' of type {param.type} is not searchable here")
    keys = keys_of(criterion, ctx)
    if criterion.modifier == "missing":
        present = select(table.c.pk).where(sp_match(table, keys))
        return pk_in(row, ctx, present, negate=criterion.values[0] == "true")
    builder = BUILDERS[param.type]
    return builder(criterion, row, ctx, keys)


# ----------------------------------------------------------------- column params

def id_predicate(criterion: Criterion, row: FromClause, postgres: bool = False) -> ColumnElement[bool]:
    if criterion.modifier == "missing":
        return false() if criterion.values[0] == "true" else true()
    ids = [unescape(v) for v in criterion.values if v]
    clause = among(row.c.id, ids, postgres) if ids else false()
    return not_(clause) if criterion.modifier == "not" else clause


def last_updated_predicate(criterion: Criterion, row: FromClause) -> ColumnElement[bool]:
    if criterion.modifier == "missing":
        return false() if criterion.values[0] == "true" else true()
    clauses = [range_compare(row.c.updated, row.c.updated, value, criterion.raw[0]) for value in criterion.values]
    return or_(*clauses)


# -------------------------------------------------------------------- date

def parse_date_value(value: str, name: str) -> tuple[int, int]:
    try:
        return parse_range(value)
    except DateFormatError as exc:
        raise bad_request(f"Invalid date in '{name}': {exc}", name, code="value") from exc


def range_compare(low_col: ColumnElement, high_col: ColumnElement, value: str, name: str) -> ColumnElement[bool]:
    prefix, text = split_prefix(unescape(value))
    low, high = parse_date_value(text, name)
    return compare_ranges(prefix, low_col, high_col, low, high, approx_width(low, high))


def approx_width(low: int, high: int) -> int:
    return max(DAY_US, abs(now_us() - low) // 10)


def compare_ranges(prefix: str, low_col: ColumnElement, high_col: ColumnElement, low: float, high: float,
                   approx: float) -> ColumnElement[bool]:
    if prefix == "eq":
        return and_(low_col >= low, high_col <= high)
    if prefix == "ne":
        return or_(low_col < low, high_col > high)
    if prefix == "gt":
        return high_col > high
    if prefix == "lt":
        return low_col < low
    if prefix == "ge":
        return high_col >= low
    if prefix == "le":
        return low_col <= high
    if prefix == "sa":
        return low_col > high
    if prefix == "eb":
        return high_col < low
    return and_(low_col <= high + approx, high_col >= low - approx)


def date_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement[bool]:
    clauses = [range_compare(idx_date.c.lo, idx_date.c.hi, v, criterion.raw[0]) for v in criterion.values]
    return pk_in(row, ctx, select(idx_date.c.pk).where(sp_match(idx_date, keys), or_(*clauses)))


# ------------------------------------------------------------ number, quantity

def parse_number(text: str, name: str) -> tuple[float, float, float]:
    """A search number and the range its precision implies: (value, low, high)."""
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise bad_request(f"Invalid number {text!r} in '{name}'", name, code="value") from exc
    if not number.is_finite():
        raise bad_request(f"Invalid number {text!r} in '{name}'", name, code="value")
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1)  # type: ignore[arg-type]
    return float(number), float(number - half), float(number + half)


def number_compare(column: ColumnElement, value: str, name: str) -> ColumnElement[bool]:
    prefix, text = split_prefix(value)
    number, low, high = parse_number(text, name)
    if prefix == "eq":
        return and_(column >= low, column < high)
    if prefix == "ne":
        return or_(column < low, column >= high)
    if prefix in ("gt", "sa"):
        return column > number
    if prefix in ("lt", "eb"):
        return column < number
    if prefix == "ge":
        return column >= number
    if prefix == "le":
        return column <= number
    spread = abs(number) * 0.1
    return and_(column >= number - spread, column <= number + spread)


def number_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    clauses = [number_compare(idx_number.c.value, unescape(v), criterion.raw[0]) for v in criterion.values]
    return pk_in(row, ctx, select(idx_number.c.pk).where(sp_match(idx_number, keys), or_(*clauses)))


def quantity_clause(value: str, name: str, value_col: ColumnElement, system_col: ColumnElement,
                    code_col: ColumnElement) -> ColumnElement[bool]:
    parts = split_escaped(value, "|")
    if len(parts) not in (1, 3):
        raise bad_request(f"A quantity is [prefix]number[|system|code], not {value!r}", name, code="value")
    clauses = [number_compare(value_col, parts[0], name)]
    if len(parts) == 3:
        if parts[1]:
            clauses.append(system_col == parts[1][:TOKEN_MAX])
        if parts[2]:
            clauses.append(code_col == parts[2][:TOKEN_MAX])
    return and_(*clauses)


def quantity_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    q = idx_quantity.c
    clauses = [quantity_clause(v, criterion.raw[0], q.value, q.system, q.code) for v in criterion.values]
    return pk_in(row, ctx, select(q.pk).where(sp_match(idx_quantity, keys), or_(*clauses)))


# --------------------------------------------------------------------- string

def string_clause(value: str, modifier: str | None, table: FromClause = idx_string) -> ColumnElement[bool]:
    text = unescape(value)
    if modifier == "exact":
        return table.c.exact == text[:1000]
    norm = like_escape(normalise(text))
    if modifier == "contains":
        return table.c.norm.like(f"%{norm}%", escape="\\")
    return table.c.norm.like(f"{norm}%", escape="\\")


def string_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    clauses = [string_clause(v, criterion.modifier) for v in criterion.values]
    return pk_in(row, ctx, select(idx_string.c.pk).where(sp_match(idx_string, keys), or_(*clauses)))


# ---------------------------------------------------------------------- token

def token_clause(value: str, system_col: ColumnElement, code_col: ColumnElement) -> ColumnElement[bool]:
    parts = split_escaped(value, "|")
    if len(parts) == 1:
        return code_col == parts[0][:TOKEN_MAX]
    system, code = parts[0][:TOKEN_MAX], "|".join(parts[1:])[:TOKEN_MAX]
    if not code:
        return system_col == system
    return and_(system_col == system, code_col == code)


def token_parts(value: str) -> tuple[str | None, str]:
    """(system, code) of a token search value as the index holds them: `code` alone has no system (None: any
    system matches); `system|` has an empty code (any code of the system)."""
    parts = split_escaped(value, "|")
    if len(parts) == 1:
        return None, parts[0][:TOKEN_MAX]
    return parts[0][:TOKEN_MAX], "|".join(parts[1:])[:TOKEN_MAX]


def token_clauses(values: list[str], system_col: ColumnElement, code_col: ColumnElement,
                  postgres: bool = False) -> ColumnElement[bool]:
    """OR of token values, codes grouped per system so that a long list is one `IN` per system (an OR of
    hundreds of system-and-code pairs would be planned as a filter over every row)."""
    clauses = []
    plain: list[str] = []  # codes of any system
    by_system: dict[str, list[str]] = {}
    for value in values:
        system, code = token_parts(value)
        if system is None:
            plain.append(code)
            continue
        if code:
            by_system.setdefault(system, []).append(code)
        else:
            clauses.append(system_col == system)
    for system, codes in by_system.items():
        clauses.append(and_(system_col == system, among(code_col, codes, postgres)))
    if plain:
        clauses.append(among(code_col, plain, postgres))
    return or_(*clauses)


def token_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    modifier = criterion.modifier
    t = idx_token.c
    if modifier == "text":
        text_keys = keys_of(criterion, ctx, "text")
        clauses = []
        for value in criterion.values:
            norm = like_escape(normalise(unescape(value)))
            clauses.append(or_(idx_string.c.norm.like(f"{norm}%", escape="\\"),
                               idx_string.c.norm.like(f"% {norm}%", escape="\\")))
        return pk_in(row, ctx, select(idx_string.c.pk).where(sp_match(idx_string, text_keys), or_(*clauses)))
    if modifier == "of-type":
        type_keys = keys_of(criterion, ctx, "of-type")
        clauses = []
        for value in criterion.values:
            parts = split_escaped(value, "|")
            if len(parts) != 3:
                raise bad_request(":of-type takes <type system>|<type code>|<value>", criterion.raw[0])
            clauses.append(and_(t.system == parts[0][:TOKEN_MAX], t.code == f"{parts[1]}|{parts[2]}"[:TOKEN_MAX]))
        return pk_in(row, ctx, select(t.pk).where(sp_match(idx_token, type_keys), or_(*clauses)))
    if modifier in ("in", "not-in"):
        clause = value_set_clause(ctx.value_sets(criterion.values, criterion.raw[0]), idx_token)
        matching = select(t.pk).where(sp_match(idx_token, keys), clause)
        return pk_in(row, ctx, matching, negate=modifier == "not-in")
    matching = select(t.pk).where(sp_match(idx_token, keys), token_clauses(criterion.values, t.system, t.code,
                                                                              ctx.postgres))
    return pk_in(row, ctx, matching, negate=modifier == "not")


def value_set_clause(value_sets: list[Any], table: FromClause) -> ColumnElement[bool]:
    """Token rows whose (system, code) is in one of the value sets; a `code` with no system (a `code`
    element) matches any listed code; a whole included system matches any code of it."""
    t = table.c
    clauses = []
    every_code: set[str] = set()
    for compiled in value_sets:
        for system, codes in compiled.enumerated.items():
            clauses.append(and_(t.system == system, t.code.in_(sorted(codes))))
            every_code |= codes
        for system in sorted({*compiled.formed, *compiled.open_systems}):
            clauses.append(t.system == system)
    if every_code:
        clauses.append(and_(t.system == "", t.code.in_(sorted(every_code))))
    return or_(*clauses) if clauses else false()


# ------------------------------------------------------------------ reference

def reference_clause(value: str, criterion: Criterion, ctx: SearchContext,
                     table: FromClause = idx_reference) -> ColumnElement[bool]:
    ref = table.c
    text = unescape(value)
    if "/" not in text and ":" not in text:
        clause = ref.tid == text[:TOKEN_MAX]
        if criterion.target_type:
            return and_(clause, ref.ttype == criterion.target_type)
        return clause
    if ctx.base_url and text.startswith(ctx.base_url + "/"):
        text = text[len(ctx.base_url) + 1:]
    canonical, _, version = text.partition("|")
    ttype, tid, _v = parse_reference(canonical)
    clauses = [ref.tid == tid[:TOKEN_MAX]]
    if ttype and tid == canonical.split("/")[-1]:
        clauses.append(ref.ttype == ttype)
    if version:
        clauses.append(ref.tversion == version)
    if criterion.target_type and ttype and ttype != criterion.target_type:
        return false()
    return and_(*clauses)


def reference_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    if criterion.modifier == "identifier":
        id_keys = keys_of(criterion, ctx, "identifier")
        t = idx_token.c
        matching = select(t.pk).where(sp_match(idx_token, id_keys),
                                      token_clauses(criterion.values, t.system, t.code, ctx.postgres))
        return pk_in(row, ctx, matching)
    clauses = [reference_clause(v, criterion, ctx) for v in criterion.values if v]
    if not clauses:
        return false()
    return pk_in(row, ctx, select(idx_reference.c.pk).where(sp_match(idx_reference, keys), or_(*clauses)))


def chain_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext) -> ColumnElement[bool]:
    """`subject:Patient.name=x`: references whose target matches the chained criterion. Targets are
    found first (they are usually few), then the references to them through the (sp, tid) index."""
    keys = keys_of(criterion, ctx)
    ref = idx_reference.c
    branches = []
    for inner in criterion.chain:
        target_type = inner.resource_types[0]
        if ctx.reach is not None and not ctx.reach.reads_any(target_type):
            continue  # nothing of it exists for the caller: a branch would cost its planning and find nothing
        target = resources.alias()
        reached = ctx.reached(target, (target_type,))
        branches.append(select(target.c.id, target.c.type).where(
            target.c.type == target_type, target.c.deleted.is_(False), build(inner, target, ctx),
            *([] if reached is None else [reached])))
    if not branches:
        return false()
    targets = branches[0] if len(branches) == 1 else union_all(*branches)
    referring = select(ref.pk).where(sp_match(idx_reference, keys), tuple_(ref.tid, ref.ttype).in_(targets))
    return pk_in(row, ctx, referring)


def has_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext) -> ColumnElement[bool]:
    """`_has:Observation:patient:code=x`: resources referred to by matching resources."""
    has = criterion.has
    assert has is not None
    source = resources.alias()
    ref = idx_reference.c
    reached = ctx.reached(source, (has.source_type,))
    sources = select(source.c.pk).where(
        source.c.type == has.source_type, source.c.deleted.is_(False), build(has.criterion, source, ctx),
        *([] if reached is None else [reached]))
    type_match = ref.ttype.in_(criterion.resource_types) if len(criterion.resource_types) > 1 \
        else ref.ttype == criterion.resource_types[0]
    referenced = select(ref.tid).where(ref.sp == has.reference.key, type_match, ref.pk.in_(sources))
    return row.c.id.in_(referenced)


# ------------------------------------------------------------------------ uri

def uri_clause(value: str, modifier: str | None, table: FromClause = idx_uri) -> ColumnElement[bool]:
    column = table.c.value
    text = unescape(value)[:URI_MAX]
    if modifier == "below":
        return column.like(like_escape(text) + "%", escape="\\")
    if modifier == "above":
        prefixes = {text}
        position = text.find("/")
        while position != -1:
            prefixes.add(text[:position])
            position = text.find("/", position + 1)
        return column.in_(sorted(prefixes))
    return column == text


def uri_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    clauses = [uri_clause(v, criterion.modifier) for v in criterion.values]
    return pk_in(row, ctx, select(idx_uri.c.pk).where(sp_match(idx_uri, keys), or_(*clauses)))


# ------------------------------------------------------------------ composite

def composite_clause(value: str, param: SearchParam, ctx: SearchContext, name: str) -> ColumnElement[bool]:
    c = idx_composite.c
    parts = split_escaped_keep(value, "$")
    if len(parts) != 2 or len(param.components) != 2:
        raise bad_request(f"Composite '{param.code}' takes <first>$<second>, not {value!r}", name, code="value")
    first = token_clause(parts[0], c.system, c.code)
    second_param = ctx.registry.component_param(param, param.components[1])
    kind = second_param.type if second_param else "token"
    second_value = parts[1]
    if kind == "token":
        second = token_clause(second_value, c.text_system, c.text)
    elif kind == "quantity":
        second = quantity_clause(second_value, name, c.lo, c.text_system, c.text)
    elif kind == "number":
        second = number_compare(c.lo, unescape(second_value), name)
    elif kind == "date":
        second = range_compare(c.lo, c.hi, second_value, name)
    elif kind == "string":
        second = c.text.like(like_escape(normalise(unescape(second_value))) + "%", escape="\\")
    else:
        second = c.text == unescape(second_value)[:TOKEN_MAX]
    return and_(first, second)


def split_escaped_keep(text: str, separator: str) -> list[str]:
    """Split on an unescaped separator, keeping escapes inside the pieces."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index:index + 2])
            index += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def composite_predicate(criterion: Criterion, row: FromClause, ctx: SearchContext, keys: list[int]) -> ColumnElement:
    param = criterion.param
    assert param is not None
    clauses = [composite_clause(v, param, ctx, criterion.raw[0]) for v in criterion.values]
    return pk_in(row, ctx, select(idx_composite.c.pk).where(sp_match(idx_composite, keys), or_(*clauses)))


def row_condition(criterion: Criterion, table: FromClause, ctx: SearchContext) -> ColumnElement[bool] | None:
    """The criterion as a condition on one index row of its table (aliased as `table`), for criteria
    that need no other rows (no modifier, no chain); None otherwise. Lets a sort join fold its filter."""
    param = criterion.param
    if param is None or criterion.chain or criterion.special or criterion.modifier not in (None, "exact", "contains"):
        return None
    name = criterion.raw[0]
    values = criterion.values
    kind = param.type
    c = table.c
    if kind == "date":
        return or_(*[range_compare(c.lo, c.hi, v, name) for v in values])
    if kind == "number":
        return or_(*[number_compare(c.value, unescape(v), name) for v in values])
    if kind == "quantity":
        return or_(*[quantity_clause(v, name, c.value, c.system, c.code) for v in values])
    if kind == "string":
        return or_(*[string_clause(v, criterion.modifier, table) for v in values])
    if criterion.modifier is not None:
        return None
    if kind == "token":
        return token_clauses(values, c.system, c.code, ctx.postgres)
    if kind == "reference":
        clauses = [reference_clause(v, criterion, ctx, table) for v in values if v]
        return or_(*clauses) if clauses else None
    if kind == "uri":
        return or_(*[uri_clause(v, None, table) for v in values])
    return None


Builder = Callable[[Criterion, FromClause, "SearchContext", list[int]], ColumnElement[bool]]

BUILDERS: dict[str, Builder] = {
    "date": date_predicate,
    "number": number_predicate,
    "quantity": quantity_predicate,
    "string": string_predicate,
    "token": token_predicate,
    "reference": reference_predicate,
    "uri": uri_predicate,
    "composite": composite_predicate,
}

TABLES_BY_TYPE = {
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "string": idx_string,
    "token": idx_token,
    "reference": idx_reference,
    "uri": idx_uri,
    "composite": idx_composite,
}

