"""The compiled invariants agree with fhirpathpy (the reference) on every profile invariant and on a set of
expressions covering the compiled FHIRPath subset."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import pytest

from server.fhir.profiles.fhirpath import Unsupported, compile_invariant, compile_native, fhirpathpy_function
from tests.scr_cases import cases
from tests.scr_examples import all_valid, care_record, examples

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "extracts-sample"


def invariants() -> list[tuple[str, str, str, str]]:
    """(profile, element path, key, expression) of every constraint the profiles add."""
    found = []
    for entry in (resources.files("profiles") / "structuredefinitions").iterdir():
        definition = json.loads(entry.read_text(encoding="utf-8"))
        for element in definition["differential"]["element"]:
            for constraint in element.get("constraint", []):
                found.append((definition["id"], element["path"], constraint["key"], constraint["expression"]))
    return found


def instances(profile: str) -> list[dict]:
    """Valid examples of a profile and every breaking-case variant of it (and the sample care record)."""
    out = [resource for name, resource in all_valid() if name == profile]
    for case in cases():
        if case.profile == profile:
            resource = copy.deepcopy(examples()[profile])
            case.mutate(resource)
            out.append(resource)
    if SAMPLE.is_dir():
        out += [r for r in care_record(SAMPLE) if r["meta"]["profile"][0].endswith("/" + profile)]
    return out


def values_at(resource: dict, path: str) -> list:
    items = [resource]
    for name in path.split(".")[1:]:
        found = []
        for item in items:
            value = item.get(name) if isinstance(item, dict) else None
            found.extend(value if isinstance(value, list) else [] if value is None else [value])
        items = found
    return items


@pytest.mark.parametrize(("profile", "path", "key", "expression"), invariants(),
                         ids=lambda v: v if isinstance(v, str) and len(v) < 60 else "")
def test_every_invariant_compiles_natively_and_agrees_with_fhirpathpy(profile, path, key, expression):
    native = compile_invariant(key, "", expression, "error", path)
    reference = compile_invariant(key, "", expression, "error", path, native=False)
    assert native.native and not reference.native
    checked = 0
    outcomes = set()
    for resource in instances(profile):
        for value in values_at(resource, path):
            assert native.holds(value) == reference.holds(value), (key, value)
            outcomes.add(native.holds(value))
            checked += 1
    assert checked >= 2
    assert outcomes == {True, False}, f"{key} is never {'true' if False in outcomes else 'false'} in the examples"


RESOURCE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "160689007"},
                        {"system": "http://read.info/readv2", "code": "13CA."}], "text": "Housebound"},
    "valueQuantity": {"value": 0.25, "unit": "score"},
    "component": [{"code": {"text": "a"}, "valueInteger": 3}, {"code": {"text": "b"}, "valueString": "x"}],
    "extension": [{"url": "http://example.org/a", "valueString": "one"}, {"url": "http://example.org/b",
                                                                         "valueBoolean": True}],
    "note": [{"text": "first"}, {"text": "second"}],
}
EXPRESSIONS = [
    "status = 'final'", "status != 'final'", "status = 'final' and code.exists()", "missing = 'x'",
    "missing.exists() or status = 'final'", "missing = 'x' or true", "missing = 'x' and false",
    "missing = 'x' and true",
    "true xor false", "true xor missing.exists()", "false implies missing = 'x'", "true implies missing = 'x'",
    "missing = 'x' implies true", "code.coding.count()", "code.coding.count() = 2", "code.coding.first().code",
    "code.coding[1].code", "code.coding[5].code", "code.coding.where(system = 'http://snomed.info/sct').code",
    "code.coding.all(code.length() > 4)", "code.coding.all(code.startsWith('1'))", "code.coding.exists(code = '13CA.')",
    "code.coding.select(system)", "code.coding.code | status", "note.text | note.text", "note.text.count() = 2",
    "(1 + 2) * 3 = 9", "7 div 2", "7 mod 3", "-7 mod 3", "10 / 4", "2 - 5", "'a' + 'b'", "'a' & missing & 'c'",
    "3 > 2", "'b' < 'a'", "2 >= 2 and 1 <= 0", "code.text.substring(1, 3)", "code.text.substring(20)",
    "code.text.upper()", "code.text.lower().contains('bound')", "code.text.matches('^House')",
    "code.text.endsWith('d')",
    "'42'.toInteger() + 1", "'4x'.toInteger()", "code.text.length()", "value is Quantity", "value is string",
    "value.ofType(Quantity).value", "(value as Quantity).unit", "component.value.ofType(integer)",
    "extension('http://example.org/b').value", "extension('http://example.org/z').exists()",
    "code.empty()", "missing.empty()", "status.not()", "(1 = 1).not()",
    "note.where($this.text = 'second').exists()", "'x' in ('x' | 'y')", "('x' | 'y') contains 'z'",
    "Observation.status", "Patient.name.exists()", "{}.exists()", "code.coding.last().system",
    "'it\\'s'.length()", "1.5 + 1", "code.coding.code.count() > 1 implies status.exists()",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_compiled_subset_agrees_with_fhirpathpy(expression):
    native = compile_native(expression)
    reference = fhirpathpy_function(expression, "Observation")
    assert native(copy.deepcopy(RESOURCE)) == reference(copy.deepcopy(RESOURCE)), expression


@pytest.mark.parametrize("expression", ["subject.resolve().exists()", "%resource.status = 'final'",
                                        "code.memberOf('http://example.org/vs')", "iif(true, 1, 2) = 1",
                                        "code.coding.code.distinct().count() = 2", "component.value.ofType(Integer)",
                                        "status.hasValue()"])
def test_expressions_outside_the_subset_fall_back_to_fhirpathpy(expression):
    with pytest.raises(Unsupported):
        compile_native(expression)
    invariant = compile_invariant("k", "", expression, "error", "Observation")
    assert not invariant.native


@pytest.mark.parametrize("expression", ["status.ofType(code) = 'final'", "code.ofType(CodeableConcept).text",
                                        "value.ofType(Quantity).unit", "code is CodeableConcept"])
def test_type_tests_on_non_choice_elements_are_answered_by_fhirpathpy(expression):
    invariant = compile_invariant("k", "", expression, "error", "Observation")
    reference = fhirpathpy_function(expression, "Observation")
    assert invariant.native
    assert invariant.evaluate(copy.deepcopy(RESOURCE)) == reference(copy.deepcopy(RESOURCE))
