"""Form checks for codes of external code systems, and the NHS number check."""

from __future__ import annotations

import re
from collections.abc import Callable

SNOMED = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
READV2 = "http://read.info/readv2"
CTV3 = "http://read.info/ctv3"

# Verhoeff tables: multiplication in the dihedral group D5, the position permutation, and its powers.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
SCTID = re.compile(r"^[1-9][0-9]{5,17}$")
CONCEPT_PARTITIONS = frozenset({"00", "10"})
ICD10_FORM = re.compile(r"^[A-Z][0-9]{2}(?:\.?(?:[0-9][0-9]?|X))?$")
READ_FORM = re.compile(r"^[A-Za-z0-9.]{5}$")
NHS_NUMBER = re.compile(r"^[0-9]{10}$")
NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def verhoeff_valid(digits: str) -> bool:
    """Whether a string of digits ends with a valid Verhoeff check digit."""
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][ord(char) - 48]]
    return check == 0


def snomed_concept_id_valid(code: str) -> bool:
    """A SNOMED CT concept id: 6-18 digits, no leading zero, concept partition, Verhoeff check digit."""
    return bool(SCTID.match(code)) and code[-3:-1] in CONCEPT_PARTITIONS and verhoeff_valid(code)


def icd10_valid(code: str) -> bool:
    """ICD-10 form: letter, two digits, optional 4th character (digit or X filler) with or without the dot,
    optional 5th digit (the UK 5th edition's extra character): N39.0, N390, R11, R11X, S72.00."""
    return bool(ICD10_FORM.match(code))


def read_code_valid(code: str) -> bool:
    """Read v2 and CTV3 codes are five characters (letters, digits and dot padding)."""
    return bool(READ_FORM.match(code))


def nhs_number_valid(value: str) -> bool:
    """10 digits whose last is the modulus-11 check digit of the first nine (11 -> 0, 10 -> invalid)."""
    if not NHS_NUMBER.match(value):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value, NHS_WEIGHTS, strict=False))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


FORM_CHECKS: dict[str, Callable[[str], bool]] = {
    SNOMED: snomed_concept_id_valid,
    DMD: snomed_concept_id_valid,
    ICD10: icd10_valid,
    READV2: read_code_valid,
    CTV3: read_code_valid,
}
FORM_NAMES = {
    SNOMED: "a SNOMED CT concept id (digits, concept partition, Verhoeff check digit)",
    DMD: "a dm+d id (a SNOMED CT concept id: digits, concept partition, Verhoeff check digit)",
    ICD10: "an ICD-10 code (letter, two digits, optional 4th character, e.g. N39.0)",
    READV2: "a Read v2 code (5 characters)",
    CTV3: "a CTV3 code (5 characters)",
}
