"""JSON text as written: every JSON number form survives a parse and a serialisation; bad bodies are 400s."""

from __future__ import annotations

import itertools

import pytest

from server.fhir.jsontext import MAX_JSON_DEPTH, ExactNumber, deeper_than, dumps, loads, parse
from server.fhir.outcome import FhirError

INTEGERS = ["0", "7", "-12", "100", "9007199254740993", "18446744073709551615", "18446744073709551616",
            "-9223372036854775809", "123456789012345678901234567890"]
FRACTIONS = ["", ".0", ".5", ".50", ".000001", ".0000001", ".1234567890123456789", ".10"]
EXPONENTS = ["", "e2", "E+2", "e-7", "E-0", "e30"]


def number_forms() -> list[str]:
    return [i + f + e for i, f, e in itertools.product(INTEGERS, FRACTIONS, EXPONENTS)]


@pytest.mark.parametrize("layout", ['{"a":%s}', '[ %s ]', '{"a": [1, %s], "b": "x: 1.50, y"}'])
def test_every_number_form_is_given_back_as_written(layout):
    for form in number_forms():
        text = layout % form
        assert dumps(loads(text)).replace(b" ", b"") == text.replace(" ", "").encode(), form


def test_a_number_a_float_would_change_computes_as_a_float():
    value = loads('{"a": 1.50}')["a"]
    assert isinstance(value, ExactNumber) and value == 1.5 and value * 2 == 3.0 and str(value) == "1.50"
    assert type(loads('{"a": 1.5}')["a"]) is float  # the common case stays a plain float


@pytest.mark.parametrize(("body", "code"), [
    (b'{"a": 1', "structure"), (b'{"a": NaN}', "structure"), (b'{"a": -Infinity}', "structure"),
    (b'{"a": 1e400}', "structure"), (b'"\\ud800"', "structure"), (b'["\\udc00 x"]', "structure"),
    (b'\xef\xbb\xbf{"a": 1}', "structure"), (b'{"a": "\xff"}', "structure"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "too-costly"),
    (b"[" * 2000 + b"]" * 2000, "too-costly"),
])
def test_a_body_that_is_not_json_or_too_deep_is_a_400(body, code):
    with pytest.raises(FhirError) as refused:
        parse(body)
    assert refused.value.status == 400 and refused.value.issues[0].code == code


def test_depth_counts_objects_and_arrays():
    assert not deeper_than(loads(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH), MAX_JSON_DEPTH)
    assert parse(b'{"a": [{"b": [1]}]}') == {"a": [{"b": [1]}]}
    assert deeper_than({"a": [{"b": [1]}]}, 3) and not deeper_than({"a": [{"b": [1]}]}, 4)
