"""Parsing FHIR search parameters into criteria and result options (no SQL here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...fhir.outcome import FhirError, Issue, bad_request
from ...fhir.searchparams import SearchParam, SearchParamRegistry
from ...fhir.text import has_control, plain_int
from .shape import SHAPE, check_expansion, check_shape

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = frozenset({
    "_count", "_offset", "_after", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements",
    "_format", "_pretty", "_type", "_since", "_contained", "_containedType",
})
IGNORED_PARAMS = frozenset({"_format", "_pretty"})
TOTAL_MODES = ("none", "estimate", "accurate")
SUMMARY_MODES = ("true", "text", "data", "count", "false")
MAX_VALUE_LENGTH = 4000
MAX_COUNT = 1000
DEFAULT_COUNT = 20
MAX_CHAIN_DEPTH = 6
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.:|]*$")
COMMON_MODIFIERS = {"missing"}
TYPE_MODIFIERS = {
    "string": {"exact", "contains"},
    "token": {"not", "text", "in", "not-in", "of-type"},
    "reference": {"identifier"},
    "uri": {"below", "above"},
    "date": set(),
    "number": set(),
    "quantity": set(),
    "composite": set(),
}


@dataclass
class Criterion:
    """One search criterion: a parameter (maybe chained) with OR-ed values."""

    param: SearchParam | None
    name: str
    modifier: str | None = None
    values: list[str] = field(default_factory=list)
    chain: list[Criterion] = field(default_factory=list)
    target_type: str | None = None
    has: HasClause | None = None
    special: str | None = None
    resource_types: tuple[str, ...] = ()
    raw: tuple[str, str] = ("", "")


@dataclass
class HasClause:
    """A reverse chain: `_has:<type>:<reference param>:<criterion>`."""

    source_type: str
    reference: SearchParam
    criterion: Criterion


@dataclass
class SortKey:
    name: str
    descending: bool
    param: SearchParam | None


@dataclass
class Include:
    source_type: str
    param: SearchParam | None
    target_type: str | None
    iterate: bool
    reverse: bool
    raw: tuple[str, str]


@dataclass
class SearchQuery:
    """Everything a search request asks for, validated against the registry."""

    resource_types: tuple[str, ...]
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    after: int | None = None
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    total: str | None = None
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def split_values(text: str) -> list[str]:
    """Split on unescaped commas, then unescape `\\,` `\\|` `\\$` `\\\\`."""
    values, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    values.append("".join(current))
    return values


def split_escaped(text: str, separator: str) -> list[str]:
    """Split on an unescaped separator (`|` or `$`), unescaping the pieces."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
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


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class QueryParser:
    """Turns (name, value) pairs into a SearchQuery; strict mode refuses what it cannot apply."""

    def __init__(self, registry: SearchParamRegistry, resource_types: tuple[str, ...], strict: bool) -> None:
        self.registry = registry
        self.resource_types = resource_types
        self.strict = strict
        self.expanded = 0  # criteria made so far, chain levels included
        self.parameter = ""  # the search parameter being parsed, as the client named it

    def parse(self, pairs: list[tuple[str, str]]) -> SearchQuery:
        query = SearchQuery(self.resource_types)
        for name, value in pairs:
            if len(value) > MAX_VALUE_LENGTH:
                raise bad_request(f"The value of search parameter '{name}' is too long", name)
            if has_control(name) or has_control(value):
                raise bad_request(f"Control characters are not allowed in search parameter {name!r}", name,
                                  code="value")
            if name in IGNORED_PARAMS or name == "_type":
                continue
            if name in RESULT_PARAMS or name.split(":", 1)[0] in ("_include", "_revinclude"):
                self.result_param(query, name, value)
                continue
            self.parameter = name
            try:
                criterion = self.criterion(name, value, self.resource_types, depth=0)
            except UnknownParameter as exc:
                self.reject(query, name, str(exc))
                continue
            query.criteria.append(criterion)
            query.applied.append((name, value))
            if len(query.criteria) > SHAPE.criteria:
                check_shape(query)  # refuses now: no need to parse the rest
        check_shape(query)
        return query

    def reject(self, query: SearchQuery, name: str, reason: str) -> None:
        if self.strict:
            raise FhirError(400, [Issue("not-supported", reason, (name,))])
        query.ignored.append(name)

    # ------------------------------------------------------------ criteria

    def criterion(self, name: str, value: str, types: tuple[str, ...], depth: int) -> Criterion:
        if depth > MAX_CHAIN_DEPTH:
            raise FhirError(400, [Issue("too-costly", f"Search chain '{self.parameter}' is deeper than "
                                                      f"{MAX_CHAIN_DEPTH} levels: search in steps, or chain fewer "
                                                      "references", (self.parameter,))])
        self.expanded += 1
        check_expansion(self.expanded, self.parameter or name)
        if not NAME_PATTERN.match(name):
            raise UnknownParameter(f"'{name}' is not a valid search parameter name")
        if name.startswith("_has:"):
            return self.has_criterion(name, value, types, depth)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        modifier = modifier or None
        if code in ("_id", "_lastUpdated"):
            if dot:
                raise UnknownParameter(f"'{code}' cannot be chained")
            if modifier not in (None, "missing", "not") or (modifier == "not" and code != "_id"):
                raise bad_request(f"Modifier ':{modifier}' is not supported on {code}", name)
            return Criterion(None, code, modifier, split_values(value), special=code, resource_types=types,
                             raw=(name, value))
        params = [self.registry.get(t, code) for t in types]
        if any(p is None for p in params):
            missing = [t for t, p in zip(types, params, strict=True) if p is None]
            raise UnknownParameter(f"Unknown search parameter '{code}' for {', '.join(missing)}")
        param = params[0]
        assert param is not None
        if any(p is not None and p.type != param.type for p in params):
            raise UnknownParameter(f"Search parameter '{code}' has different types across {', '.join(types)}")
        criterion = Criterion(param, code, None, [], resource_types=types, raw=(name, value))
        if dot:
            if param.type != "reference":
                raise bad_request(f"'{code}' is not a reference parameter and cannot be chained", name)
            criterion.target_type = self.chain_target(param, modifier, rest, name)
            targets = (criterion.target_type,) if criterion.target_type else self.chain_targets(param, rest)
            criterion.chain = [self.criterion(rest, value, (t,), depth + 1) for t in targets]
            return criterion
        if modifier is not None:
            criterion.modifier = self.check_modifier(param, modifier, name)
            if param.type == "reference" and modifier[:1].isupper():
                criterion.target_type = modifier
                criterion.modifier = None
        criterion.values = split_values(value)
        if criterion.modifier == "missing" and value not in ("true", "false"):
            raise bad_request(f"':missing' takes true or false, not {value!r}", name)
        return criterion

    def check_modifier(self, param: SearchParam, modifier: str, name: str) -> str:
        if modifier in COMMON_MODIFIERS or modifier in TYPE_MODIFIERS.get(param.type, set()):
            return modifier
        if param.type == "reference" and modifier[:1].isupper():
            if modifier not in self.registry.types.supported:
                raise bad_request(f"Unknown resource type '{modifier}' in '{name}'", name)
            if param.targets and modifier not in param.targets:
                raise bad_request(f"'{param.code}' cannot refer to {modifier}", name)
            return modifier
        raise bad_request(f"Modifier ':{modifier}' is not supported on {param.type} parameter '{param.code}'", name)

    def chain_target(self, param: SearchParam, modifier: str | None, rest: str, name: str) -> str | None:
        if modifier is None:
            return None
        if modifier not in self.registry.types.supported:
            raise bad_request(f"Unknown resource type '{modifier}' in chain '{name}'", name)
        if param.targets and modifier not in param.targets:
            raise bad_request(f"'{param.code}' cannot refer to {modifier}", name)
        return modifier

    def chain_targets(self, param: SearchParam, rest: str) -> tuple[str, ...]:
        """Target types of a reference on which the chained parameter exists."""
        code = rest.split(".", 1)[0].split(":", 1)[0]
        candidates = param.targets or tuple(sorted(self.registry.types.supported))
        found = tuple(t for t in candidates if t in self.registry.types.supported
                      and (code in ("_id", "_lastUpdated") or self.registry.get(t, code) is not None))
        if not found:
            raise UnknownParameter(f"No target of '{param.code}' has a search parameter '{code}'")
        return found

    def has_criterion(self, name: str, value: str, types: tuple[str, ...], depth: int) -> Criterion:
        parts = name.split(":", 3)
        if len(parts) < 4:
            raise bad_request(f"'{name}' must be _has:<type>:<reference parameter>:<parameter>", name)
        _, source_type, reference_code, rest = parts
        if source_type not in self.registry.types.supported:
            raise bad_request(f"Unknown resource type '{source_type}' in '{name}'", name)
        reference = self.registry.get(source_type, reference_code)
        if reference is None or reference.type != "reference":
            raise bad_request(f"'{reference_code}' is not a reference parameter of {source_type}", name)
        inner = self.criterion(rest, value, (source_type,), depth + 1)
        criterion = Criterion(None, name, None, [], special="_has", resource_types=types, raw=(name, value))
        criterion.has = HasClause(source_type, reference, inner)
        return criterion

    # ------------------------------------------------------ result params

    def result_param(self, query: SearchQuery, name: str, value: str) -> None:
        base, _, modifier = name.partition(":")
        if base == "_count":
            query.count = self.integer(name, value, 0, MAX_COUNT, clamp=True)
            query.applied.append((name, str(query.count)))
        elif base == "_offset":
            query.offset = self.integer(name, value, 0, 10**7)
        elif base == "_after":
            query.after = self.integer(name, value, 0, 2**62)
        elif base == "_total":
            if value not in TOTAL_MODES:
                raise bad_request(f"_total must be one of {', '.join(TOTAL_MODES)}", name)
            query.total = value
            query.applied.append((name, value))
        elif base == "_summary":
            if value not in SUMMARY_MODES:
                raise bad_request(f"_summary must be one of {', '.join(SUMMARY_MODES)}", name)
            query.summary = value
            query.applied.append((name, value))
        elif base == "_elements":
            query.elements = [e.strip() for e in value.split(",") if e.strip()]
            query.applied.append((name, value))
        elif base == "_sort":
            query.sort = [self.sort_key(item, name) for item in value.split(",") if item.strip()]
            query.applied.append((name, value))
        elif base in ("_include", "_revinclude"):
            if modifier not in ("", "iterate", "recurse"):
                raise bad_request(f"Unknown modifier ':{modifier}' on {base}", name)
            for item in value.split(","):
                query.includes.append(self.include(item.strip(), base == "_revinclude", bool(modifier), name))
            query.applied.append((name, value))
        else:
            self.reject(query, name, f"Search parameter '{name}' is not supported")

    @staticmethod
    def integer(name: str, value: str, low: int, high: int, clamp: bool = False) -> int:
        number = plain_int(value)
        if number is None:
            raise bad_request(f"{name} must be a non-negative integer, not {value!r}", name)
        if number > high:
            if clamp:
                return high
            raise bad_request(f"{name} must be at most {high}", name)
        return max(low, number)

    def sort_key(self, item: str, name: str) -> SortKey:
        item = item.strip()
        descending = item.startswith("-")
        code = item.lstrip("-")
        if code in ("_id", "_lastUpdated"):
            return SortKey(code, descending, None)
        params = [self.registry.get(t, code) for t in self.resource_types]
        if not params or any(p is None for p in params):
            raise bad_request(f"Cannot sort by unknown parameter '{code}'", name)
        param = params[0]
        if param is not None and param.type == "composite":
            raise bad_request(f"Cannot sort by composite parameter '{code}'", name)
        return SortKey(code, descending, param)

    def include(self, item: str, reverse: bool, iterate: bool, name: str) -> Include:
        parts = item.split(":")
        if len(parts) < 2 or len(parts) > 3:
            raise bad_request(f"{name} value must be <type>:<parameter>[:<target type>], not {item!r}", name)
        source_type, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if source_type not in self.registry.types.supported:
            raise bad_request(f"Unknown resource type '{source_type}' in {name}", name)
        if target is not None and target not in self.registry.types.supported:
            raise bad_request(f"Unknown target type '{target}' in {name}", name)
        if code == "*":
            return Include(source_type, None, target, iterate, reverse, (name, item))
        param = self.registry.get(source_type, code)
        if param is None or param.type != "reference":
            raise bad_request(f"'{code}' is not a reference parameter of {source_type}", name)
        return Include(source_type, param, target, iterate, reverse, (name, item))


class UnknownParameter(ValueError):
    """A parameter this server does not know (ignored unless handling is strict)."""
