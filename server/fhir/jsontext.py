"""FHIR JSON text: parsing that keeps numbers as written and bounds nesting, and serialising them back."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from .outcome import FhirError, Issue

MAX_JSON_DEPTH = 100
CONTAINERS = (dict, list)
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1
LONE_SURROGATE_SUSPECT = re.compile(r"\\u[dD][89a-fA-F]")


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
    """A JSON number with a fraction or exponent: a float when orjson writes that float back as `text`."""
    number = float(text)
    if number in (math.inf, -math.inf):
        raise ValueError(f"the number {text} is beyond the range of a double")
    return number if orjson.dumps(number) == text.encode() else ExactNumber(text)


def exact_int(text: str) -> int | float:
    """A JSON integer: an int when orjson can write it (64 bits), else an ExactNumber."""
    number = int(text)
    return number if INT64_MIN <= number <= UINT64_MAX else ExactNumber(text)


def refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: bytes | str) -> Any:
    """Parse JSON keeping every number as written (a number a float would change comes back as an
    ExactNumber), as strictly as orjson: UTF-8, no byte order mark, no NaN or Infinity, no lone
    surrogates. The standard library's parser, as orjson cannot hand over a number's text; about twice
    orjson's time. Raises ValueError (JSONDecodeError, UnicodeDecodeError) or RecursionError."""
    decoded = text.decode() if isinstance(text, bytes) else text
    if LONE_SURROGATE_SUSPECT.search(decoded) is not None:
        orjson.loads(text)  # orjson refuses a lone surrogate, the standard library does not
    return json.loads(decoded, parse_float=exact_float, parse_int=exact_int, parse_constant=refuse_constant)


def parse(text: bytes | str, what: str = "The body") -> Any:
    """A client's JSON body: 400 with an OperationOutcome when it is not JSON or is nested deeper than
    MAX_JSON_DEPTH objects and arrays."""
    try:
        value = loads(text)
    except RecursionError as exc:
        raise too_deep(what) from exc
    except ValueError as exc:
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
