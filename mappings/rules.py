"""Plausibility rules: what a converted extract row must satisfy across its columns and against its extract date.

A spec's ``rules`` are data, one mapping each, interpreted here (no Python per rule):

- ``{column: X, not-after: $Y}``, ``{column: X, not-before: $Y}`` - dates and date-times in order;
- ``{column: X, age-at-most: 125, at: [$Y, $Z]}`` - whole years from the date in X to the first of Y, Z given;
- ``{column: X, min: 0}``, ``{column: X, max: 168}`` - numbers within bounds;
  ``max: {Hours: 168, Days: 7}, per: Unit_Type`` - a bound per value of another column (none for others).

An operand ``$name`` is a column, or ``$extract_date`` (the day the extract was taken); a list means the first
that has a value. A rule whose column or operand has no value does not apply.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .template import SpecError

EXTRACT_DATE = "extract_date"
RULE_KEYS = {"column", "not-after", "not-before", "age-at-most", "at", "min", "max", "per"}
TESTS = ("not-after", "not-before", "age-at-most", "min", "max")
DATE_TYPES = ("date", "datetime")
NUMBER_TYPES = ("decimal", "integer")


def extract_day(label: str) -> date:
    """The extract date of a label: ``YYYY-MM-DD`` as it is, ``YYYY-MM`` the last day of that month (a monthly
    extract holds the month to its end)."""
    parts = [int(p) for p in label.split("-")]
    if len(parts) == 2:
        year, month = parts
        return date(year, month, calendar.monthrange(year, month)[1])
    year, month, day = parts
    return date(year, month, day)


def moment(value: str) -> date | datetime:
    """A converted date (``YYYY-MM-DD``) or date-time (with its offset) as a comparable value."""
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)


def ordered(a: date | datetime, b: date | datetime) -> tuple[date | datetime, date | datetime]:
    """Both as date-times when both have times, else both as dates (a date-time is on its local day)."""
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a, b
    return (a.date() if isinstance(a, datetime) else a), (b.date() if isinstance(b, datetime) else b)


def years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(frozen=True)
class Operand:
    """Where a rule's other value comes from: the first of these names (columns or ``extract_date``) with a
    value."""

    names: tuple[str, ...]

    def value(self, values: dict[str, Any], as_of: date | None) -> tuple[str, Any] | None:
        for name in self.names:
            found = as_of if name == EXTRACT_DATE else values.get(name)
            if found is not None:
                return name, found
        return None

    @property
    def dated(self) -> bool:
        """Whether the extract date is among the names."""
        return EXTRACT_DATE in self.names


def describe(name: str, value: Any) -> str:
    return f"the extract date ({value})" if name == EXTRACT_DATE else f"{name} ({value})"


@dataclass(frozen=True)
class Rule:
    """One plausibility rule on one column."""

    column: str
    test: str  # one of TESTS
    operand: Operand | None = None  # not-after, not-before, age-at-most (at)
    limit: float | None = None  # age-at-most, min, max
    limits: dict[str, float] | None = None  # max per value of ``per``
    per: str | None = None

    @property
    def columns(self) -> set[str]:
        names = {self.column} | ({self.per} if self.per else set())
        return names | ({n for n in self.operand.names if n != EXTRACT_DATE} if self.operand else set())

    @property
    def tightens(self) -> bool:
        """Whether a row that met the rule at one extract date may fail it at a later one: an age grows with
        the extract date, while a date not after last month's extract date is not after this month's."""
        return self.test == "age-at-most" and self.operand is not None and self.operand.dated

    def failure(self, values: dict[str, Any], as_of: date | None) -> str | None:
        """Why the row breaks this rule, or None when it does not (or the rule does not apply)."""
        value = values.get(self.column)
        if value is None:
            return None
        if self.test in ("min", "max"):
            return self.bound(value, values)
        assert self.operand is not None
        other = self.operand.value(values, as_of)
        if other is None:
            return None
        name, found = other
        mine = moment(value)
        theirs = found if isinstance(found, date) else moment(str(found))
        if self.test == "age-at-most":
            born, on = ordered(mine, theirs)
            age = years_between(born, on)  # type: ignore[arg-type]
            if self.limit is not None and age > self.limit:
                return f"{value} makes an age of {age} years at {describe(name, found)}, over {self.limit:g}"
            return None
        a, b = ordered(mine, theirs)
        if self.test == "not-after" and a > b:  # type: ignore[operator]
            return f"{value} is after {describe(name, found)}"
        if self.test == "not-before" and a < b:  # type: ignore[operator]
            return f"{value} is before {describe(name, found)}"
        return None

    def bound(self, value: float, values: dict[str, Any]) -> str | None:
        if self.test == "min":
            assert self.limit is not None
            return f"{value:g} is below the least allowed, {self.limit:g}" if value < self.limit else None
        if self.limits is not None:
            key = values.get(self.per or "")
            limit = self.limits.get(str(key)) if key is not None else None
            if limit is not None and value > limit:
                return f"{value:g} is over the most allowed for {self.per} {key}, {limit:g}"
            return None
        assert self.limit is not None
        return f"{value:g} is over the most allowed, {self.limit:g}" if value > self.limit else None


@dataclass(frozen=True)
class Rules:
    """The rules of one extract file."""

    rules: tuple[Rule, ...] = ()

    @property
    def tightening(self) -> tuple[Rule, ...]:
        """The rules a row unchanged since an earlier extract must be checked against again."""
        return tuple(rule for rule in self.rules if rule.tightens)

    def failures(self, values: dict[str, Any], as_of: date | None) -> dict[str, list[str]]:
        """{column: [reasons]} for every rule the converted row breaks."""
        errors: dict[str, list[str]] = {}
        for rule in self.rules:
            reason = rule.failure(values, as_of)
            if reason is not None:
                errors.setdefault(rule.column, []).append(reason)
        return errors


def _operand(where: str, raw: Any, columns: dict[str, str]) -> Operand:
    items = raw if isinstance(raw, list) else [raw]
    names = []
    for item in items:
        if not isinstance(item, str) or not item.startswith("$"):
            raise SpecError(f"{where}: an operand is $column or $extract_date, got {item!r}")
        name = item[1:]
        if name != EXTRACT_DATE and columns.get(name) not in DATE_TYPES:
            raise SpecError(f"{where}: {item} is not a date or date-time column")
        names.append(name)
    return Operand(tuple(names))


def _number(where: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise SpecError(f"{where}: a bound is a number, got {raw!r}")
    return float(raw)


def _tests(at: str, item: dict[str, Any], column: str, kind: str, columns: dict[str, str]) -> list[Rule]:
    """The rules one spec item declares on one column, each test checked against the column's type."""
    if ("at" in item) != ("age-at-most" in item):
        raise SpecError(f"{at}: age-at-most and at go together")
    if "per" in item and not isinstance(item.get("max"), dict):
        raise SpecError(f"{at}: per goes with a max per value ({{A: N, B: M}})")
    found: list[Rule] = []
    for test in (t for t in TESTS if t in item):
        value = item[test]
        if test in ("not-after", "not-before") and kind in DATE_TYPES:
            found.append(Rule(column, test, operand=_operand(at, value, columns)))
        elif test == "age-at-most" and kind == "date":
            found.append(Rule(column, test, operand=_operand(at, item["at"], columns), limit=_number(at, value)))
        elif test == "max" and kind in NUMBER_TYPES and isinstance(value, dict):
            if item.get("per") not in columns:
                raise SpecError(f"{at}: a max per value needs per: <column>")
            limits = {str(k): _number(at, v) for k, v in value.items()}
            found.append(Rule(column, test, limits=limits, per=str(item["per"])))
        elif test in ("min", "max") and kind in NUMBER_TYPES:
            found.append(Rule(column, test, limit=_number(at, value)))
        else:
            raise SpecError(f"{at}: {test} does not apply to a {kind} column")
    if not found:
        raise SpecError(f"{at}: a rule needs one of {', '.join(TESTS)}")
    return found


def parse_rules(where: str, raw: Any, columns: dict[str, str]) -> Rules:
    """Check and compile a spec's ``rules`` list; ``columns`` gives each column's type."""
    if raw is None:
        return Rules()
    if not isinstance(raw, list):
        raise SpecError(f"{where}: rules is a list")
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        at = f"{where}: rules[{index}]"
        if not isinstance(item, dict):
            raise SpecError(f"{at}: a rule is a mapping")
        extra = set(item) - RULE_KEYS
        if extra:
            raise SpecError(f"{at}: unknown keys {sorted(extra)}; allowed: {sorted(RULE_KEYS)}")
        column = str(item.get("column"))
        if column not in columns:
            raise SpecError(f"{at}: unknown column {item.get('column')!r}")
        rules.extend(_tests(at, item, column, columns[column], columns))
    return Rules(tuple(rules))
