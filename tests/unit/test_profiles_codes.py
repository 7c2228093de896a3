"""NHS number, SNOMED CT, ICD-10 and Read code checks, standalone and through the profiles."""

from __future__ import annotations

import copy

import pytest

from server.fhir.profiles import ProfileValidator
from server.fhir.profiles.codes import icd10_valid, nhs_number_valid, read_code_valid, snomed_concept_id_valid
from tests.scr_examples import examples

VALID_NHS = ["9434765919", "9912003888", "9991000003", "9991001379", "9991004114", "9991006850", "9991008225",
             "9991009590", "9991010963", "9434765900"]  # the last has check digit 0 (11 - 0 = 11)
INVALID_NHS = {
    "wrong check digit": "9434765918",
    "wrong check digit 2": "9991000004",
    "check digit would be 10": "9991000020",
    "check digit would be 10, any last digit": "9991000029",
    "nine digits": "943476591",
    "eleven digits": "94347659190",
    "letters": "94347659A9",
    "all letters": "abcdefghij",
    "spaces": "943 476 5919",
    "empty": "",
}


@pytest.fixture(scope="module")
def profiles() -> ProfileValidator:
    return ProfileValidator.load()


@pytest.mark.parametrize("number", VALID_NHS)
def test_valid_nhs_numbers(profiles, number):
    assert nhs_number_valid(number)
    patient = copy.deepcopy(examples()["SCR-Patient"])
    patient["identifier"][0]["value"] = number
    assert profiles.check(patient) == []


@pytest.mark.parametrize(("why", "number"), INVALID_NHS.items())
def test_invalid_nhs_numbers(profiles, why, number):
    assert not nhs_number_valid(number), why
    patient = copy.deepcopy(examples()["SCR-Patient"])
    patient["identifier"][0]["value"] = number
    issues = profiles.check(patient)
    assert [i.code for i in issues] == ["invariant"], (why, issues)
    assert "scr-nhs-1" in issues[0].diagnostics
    assert issues[0].expression == ("Patient.identifier[0]",)


def test_nhs_slice_is_optional_but_checked_wherever_it_is(profiles):
    patient = copy.deepcopy(examples()["SCR-Patient"])
    patient["identifier"] = patient["identifier"][1:]
    assert profiles.check(patient) == []
    patient["identifier"].append({"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"})
    issues = profiles.check(patient)
    assert len(issues) == 1 and issues[0].expression == ("Patient.identifier[1]",)


@pytest.mark.parametrize("code", ["248279007", "925791000000100", "925831000000107", "925861000000102", "160689007",
                                  "160734000", "394923006", "248171000000108", "734163000", "44054006",
                                  "39720311000001101"])
def test_snomed_concept_ids(code):
    assert snomed_concept_id_valid(code)


@pytest.mark.parametrize(("why", "code"), [("check digit", "248279008"), ("description partition", "248279017"),
                                           ("leading zero", "0248279007"), ("too short", "12345"),
                                           ("letters", "24827900A"), ("too long", "1" * 19)])
def test_bad_snomed_concept_ids(why, code):
    assert not snomed_concept_id_valid(code), why


@pytest.mark.parametrize("code", ["N39.0", "N390", "R11", "R11X", "E86X", "S72.00", "S7200", "W19", "I50.0", "U07.1"])
def test_icd10_forms(code):
    assert icd10_valid(code)


@pytest.mark.parametrize("code", ["n39.0", "N39.", "N3", "39.0", "N39.0.1", "N39.0A", "NN39"])
def test_bad_icd10_forms(code):
    assert not icd10_valid(code)


def test_read_code_forms():
    assert read_code_valid("G20..") and read_code_valid("XE0Uh")
    assert not read_code_valid("G20") and not read_code_valid("G20...")


def test_condition_code_form_is_checked_through_the_binding(profiles):
    condition = copy.deepcopy(examples()["SCR-Condition"])
    condition["code"]["coding"][1]["code"] = "G58"  # Read v2 codes have five characters
    issues = profiles.check(condition)
    assert [i.code for i in issues] == ["code-invalid"]
    assert issues[0].expression == ("Condition.code.coding[1].code",)
