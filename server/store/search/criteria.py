"""Conditional criteria in one canonical form, so every spelling of a criterion locks and matches alike."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ...fhir.outcome import bad_request
from ...fhir.querystring import parse_query
from ...fhir.searchparams import SearchParam, SearchParamRegistry, param_key
from .parse import IGNORED_PARAMS, split_escaped, split_values

PREFIXED_TYPES = frozenset({"number", "date", "quantity"})
SAFE = ":/|,$@!*'()~"
ESCAPED = ("\\", "|", ",", "$")


@dataclass(frozen=True)
class Criteria:
    """A conditional criterion as the search engine reads it: decoded pairs, normalised and sorted."""

    resource_type: str
    pairs: tuple[tuple[str, str], ...]

    @property
    def query(self) -> str:
        """The criterion as a query string that parses back to exactly these pairs."""
        return "&".join(f"{quote(name, safe=SAFE)}={quote(value, safe=SAFE)}" for name, value in self.pairs)

    @property
    def lock_key(self) -> int:
        """The advisory lock key of the criterion: equal for every spelling of it."""
        return param_key(self.resource_type, "?" + self.query)

    def __str__(self) -> str:
        shown = "&".join(f"{name}={value}" for name, value in self.pairs)
        return f"{self.resource_type}?{shown}"


def canonical_criteria(registry: SearchParamRegistry, resource_type: str, text: str, where: str,
                       expression: str | None = None) -> Criteria:
    """The canonical form of a criterion (a conditional URL's query, `If-None-Exist`, a transaction
    entry's `ifNoneExist` or url): percent-decoded (400 when the encoding is broken), formatting and
    empty parameters dropped (400 when nothing is left), modifiers and prefixes normalised, each
    parameter's OR values in order, and the parameters sorted."""
    pairs = []
    for name, value in parse_query(text.strip(), where, expression):
        if name in IGNORED_PARAMS or not value.strip():
            continue
        name, value = canonical_pair(registry, resource_type, name.strip(), value)
        pairs.append((name, value))
    if not pairs:
        located = (expression,) if expression else ()
        raise bad_request(f"{where}: no search criteria ({text.strip() or 'nothing'!r} names no parameter "
                          "with a value)", located)
    return Criteria(resource_type, tuple(sorted(set(pairs))))


def canonical_pair(registry: SearchParamRegistry, resource_type: str, name: str, value: str) -> tuple[str, str]:
    """One parameter in canonical form: `subject:Patient=1` as `subject=Patient/1`, `eq` prefixes
    dropped, token values re-escaped as the engine splits them, OR values sorted."""
    code, _, modifier = name.partition(":")
    if "." in name or code.startswith("_has"):
        return name, value
    param = registry.get(resource_type, code)
    values = split_values(value)
    if param is not None and param.type == "reference" and modifier[:1].isupper():
        values = [item if "/" in item else f"{modifier}/{item}" for item in values]
        name = code
    elif param is not None and not modifier:
        values = [canonical_value(param, item) for item in values]
    return name, ",".join(sorted(set(values)))


def canonical_value(param: SearchParam, value: str) -> str:
    """A value as the engine reads it for its parameter's type (prefix `eq` is the default)."""
    if param.type in PREFIXED_TYPES and len(value) > 2 and value[:2] == "eq" and not value[2].isalpha():
        return value[2:]
    if param.type == "token":
        return "|".join(escape(part) for part in split_escaped(value, "|"))
    return value


def escape(text: str) -> str:
    for char in ESCAPED:
        text = text.replace(char, "\\" + char)
    return text
