"""Row checks: a marshmallow schema per extract file, built from the ``columns`` and ``checks`` of its spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from . import convert
from .rules import Rules


@dataclass(frozen=True)
class ColumnSpec:
    """One column of an extract: whether it is required, its type (conversion) and allowed values."""

    name: str
    required: bool = False
    type: str = "string"
    format: str | None = None
    values: frozenset[str] | None = None
    values_from: str | None = None  # the ValueSet the allowed values come from, for messages
    default: str | None = None
    true: frozenset[str] = frozenset({"Y"})
    false: frozenset[str] = frozenset({"N"})

    def converter(self) -> Callable[[str], Any]:
        """The conversion of the trimmed text to the value the templates see."""
        kind = self.type
        if kind == "date":
            fmt = self.format or "YYYY-MM-DD"
            if fmt not in convert.DATE_FORMATS:
                raise ValueError(f"column {self.name}: unknown date format {fmt!r}")
            return lambda text: convert.fhir_date(text, fmt)
        if kind == "datetime":
            fmt = self.format or "YYYY-MM-DDTHH:MM"
            if fmt not in convert.DATETIME_FORMATS:
                raise ValueError(f"column {self.name}: unknown date-time format {fmt!r}")
            return lambda text: convert.fhir_datetime(text, fmt)
        if kind == "boolean":
            true, false = self.true, self.false

            def boolean(text: str) -> bool:
                if text in true:
                    return True
                if text in false:
                    return False
                raise ValueError(f"{text!r} is not one of {', '.join(sorted(true | false))}")

            return boolean
        if kind not in convert.SIMPLE:
            raise ValueError(f"column {self.name}: unknown type {kind!r}")
        return convert.SIMPLE[kind]


class Column(fields.Field):
    """A marshmallow field that converts a trimmed extract value and checks it against allowed values."""

    def __init__(self, spec: ColumnSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.convert = spec.converter()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        spec = self.spec
        if spec.values is not None and value not in spec.values:
            source = f" of {spec.values_from}" if spec.values_from else ""
            shown = ", ".join(sorted(spec.values)) if len(spec.values) <= 12 else f"the codes{source}"
            raise ValidationError(f"unknown code {value!r}: expected one of {shown}")
        try:
            return self.convert(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


@dataclass(frozen=True)
class CheckSpec:
    """A check across columns: when ``when_column`` holds one of ``when_in`` (or, with ``when_in`` None, any
    value), ``column`` must convert as ``type`` (``required``: must have a value)."""

    column: str
    type: str
    when_column: str
    when_in: frozenset[str] | None

    def applies(self, data: dict[str, Any]) -> bool:
        value = data.get(self.when_column)
        if value is None:
            return False
        return self.when_in is None or str(value) in self.when_in

    def describe(self) -> str:
        if self.when_in is None:
            return f"{self.when_column} is given"
        return f"{self.when_column} is {' or '.join(sorted(self.when_in))}"


class RowSchema(Schema):
    """Base of the generated schemas: unknown columns are ignored, cross-column checks and plausibility rules
    run last, once every column has converted."""

    class Meta:
        unknown = EXCLUDE

    checks: tuple[tuple[CheckSpec, Callable[[str], Any]], ...] = ()
    rules: Rules = Rules()
    as_of: date | None = None  # the extract date the rules compare with

    @validates_schema(skip_on_field_errors=True)
    def cross_checks(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        for check, conversion in self.checks:
            if not check.applies(data):
                continue
            if check.type == "required":
                if data.get(check.column) is None:
                    errors.setdefault(check.column, []).append(f"a value is required when {check.describe()}")
                continue
            if data.get(check.column) is not None:
                try:
                    conversion(str(data[check.column]))
                except ValueError as exc:
                    errors.setdefault(check.column, []).append(str(exc))
        if errors:
            raise ValidationError(errors)

    @validates_schema(skip_on_field_errors=True)
    def plausible(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors = self.rules.failures(data, self.as_of)
        if errors:
            raise ValidationError(errors)


def build_schema(name: str, columns: list[ColumnSpec], checks: list[CheckSpec], rules: Rules | None = None,
                 as_of: date | None = None) -> Schema:
    """A schema instance for one extract file: required columns, types, code lists, cross-column checks and
    plausibility rules (against the extract date ``as_of``)."""
    declared: dict[str, Any] = {}
    for column in columns:
        options: dict[str, Any] = {"required": column.required,
                                   "error_messages": {"required": "a value is required"}}
        if column.default is not None and not column.required:
            options["load_default"] = Column(column).deserialize(column.default)
        declared[column.name] = Column(column, **options)
    compiled = tuple((check, ColumnSpec(check.column, type="string" if check.type == "required" else check.type)
                      .converter()) for check in checks)
    declared["checks"] = compiled
    declared["rules"] = rules or Rules()
    declared["as_of"] = as_of
    schema_class = type(f"{name}Schema", (RowSchema,), declared)
    return schema_class()
