"""FHIR JSON text: parsing that keeps numbers as written and bounds nesting, and serialising them back."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from .outcome import FhirError, Issue

MAX_JSON_DEPTH = 100
CONTAINERS = (dict, list)
# A number token orjson might not give back as written: a fraction ending in a zero after its first digit
# (`1.50`), an exponent (`1.0e2`), five zeros after the point (orjson writes 0.000001 as 1e-6), or 16
# digits and more (beyond what a double holds, or past 64 bits). Only positions where JSON puts a number
# are looked at; a match inside a string only costs the slower parse.
UNSURE_NUMBER = re.compile(
    rb"[:\[,]\s*-?(?:[0-9]+\.[0-9]*[0-9]0[\s,\]}]|[0-9]+(?:\.[0-9]+)?[eE]|0\.00000|[0-9.]{16})")
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


class ExactNumber(float):
    """A JSON number whose text a float would not give back (`1.50`, `1.0e2`, 30 digits): a float to
    compute with, and the text as written for serialisation."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> ExactNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[ExactNumber], tuple[str]]:
        return (ExactNumber, (self.text,))


def exact_float(text: str) -> float:
    number = float(text)
    return number if orjson.dumps(number) == text.encode() else ExactNumber(text)


def exact_int(text: str) -> int | float:
    number = int(text)
    return number if INT64_MIN <= number <= UINT64_MAX else ExactNumber(text)


def loads(text: bytes | str) -> Any:
    """Parse JSON (orjson's rules: UTF-8, no NaN, no lone surrogates) keeping every number as written:
    a number a float would change comes back as an ExactNumber."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if UNSURE_NUMBER.search(raw) is None:
        return value
    return json.loads(raw.decode(), parse_float=exact_float, parse_int=exact_int)


def parse(text: bytes | str, what: str = "The body") -> Any:
    """A client's JSON body: 400 with an OperationOutcome when it is not JSON or is nested deeper than
    MAX_JSON_DEPTH objects and arrays."""
    try:
        value = loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise too_deep(what) from exc
        raise FhirError(400, [Issue("structure", f"{what} is not valid JSON: {exc}")]) from exc
    if deeper_than(value, MAX_JSON_DEPTH):
        raise too_deep(what)
    return value


def too_deep(what: str) -> FhirError:
    return FhirError(400, [Issue("too-costly", f"{what} nests objects and arrays more than {MAX_JSON_DEPTH} "
                                               "deep, the most this server accepts")])


def deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` deep (the outermost counts 1), level by level."""
    level = [value] if value.__class__ in CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            items = node.values() if node.__class__ is dict else node
            below += [item for item in items if item.__class__ in CONTAINERS]
        level = below
    return False


def exact_text(value: Any) -> orjson.Fragment:
    """orjson's `default`: an ExactNumber is written as it was read."""
    if isinstance(value, ExactNumber):
        return orjson.Fragment(value.text)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any, option: int = 0) -> bytes:
    """Compact JSON bytes, numbers as they were read."""
    return orjson.dumps(value, default=exact_text, option=option)
