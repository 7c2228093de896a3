"""Value conversions of extract columns: each takes the trimmed text and returns the FHIR value or raises ValueError."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from server.fhir.profiles.codes import nhs_number_valid, read_code_valid, snomed_concept_id_valid

DIGITS10 = re.compile(r"^[0-9]{10}$")
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
INTEGER = re.compile(r"^-?[0-9]+$")
ODS = re.compile(r"^[A-Z0-9]{3,10}$")
GMC = re.compile(r"^[0-9]{7}$")
ICD10 = re.compile(r"^([A-Z][0-9]{2})\.?([0-9X])?([0-9])?$")

#: date formats the specs may name, as (regex, field order)
DATE_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "YYYY-MM-DD": (re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$"), "ymd"),
    "DD/MM/YYYY": (re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$"), "dmy"),
}
DATETIME_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "YYYY-MM-DDTHH:MM": (re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})$"), "ymd"),
    "DD/MM/YYYY HH:MM": (re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}):([0-9]{2})$"), "dmy"),
}

def nhs_number(text: str) -> str:
    """An NHS number with its spaces removed, checked (standards.md)."""
    digits = text.replace(" ", "")
    if not DIGITS10.match(digits):
        raise ValueError(f"NHS number {text!r} is not 10 digits")
    if not nhs_number_valid(digits):
        raise ValueError(f"NHS number {text!r} fails the modulus 11 check")
    return digits


def _ymd(match: re.Match[str], order: str) -> tuple[int, int, int]:
    a, b, c = (int(g) for g in match.groups()[:3])
    return (a, b, c) if order == "ymd" else (c, b, a)


def parse_date(text: str, fmt: str) -> date:
    pattern, order = DATE_FORMATS[fmt]
    match = pattern.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date in the form {fmt}")
    try:
        return date(*_ymd(match, order))
    except ValueError:
        raise ValueError(f"{text!r} is not a real date ({fmt})") from None


def fhir_date(text: str, fmt: str) -> str:
    return parse_date(text, fmt).isoformat()


def uk_offset(moment: datetime) -> str:
    """The UK civil time offset of a local wall-clock time: +01:00 in British Summer Time, else +00:00.

    BST runs from 01:00 GMT on the last Sunday of March to 01:00 GMT on the last Sunday of October; the
    repeated hour in October is read as BST (its first occurrence)."""
    year = moment.year
    march = date(year, 3, 31)
    march -= timedelta(days=(march.weekday() + 1) % 7)
    october = date(year, 10, 31)
    october -= timedelta(days=(october.weekday() + 1) % 7)
    start = datetime(year, 3, march.day, 1, 0)
    end = datetime(year, 10, october.day, 2, 0)
    return "+01:00" if start <= moment < end else "+00:00"


def fhir_datetime(text: str, fmt: str) -> str:
    """A local UK date and time (minutes) as a FHIR dateTime with seconds and offset."""
    pattern, order = DATETIME_FORMATS[fmt]
    match = pattern.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date and time in the form {fmt}")
    hour, minute = int(match.group(4)), int(match.group(5))
    try:
        moment = datetime(*_ymd(match, order), hour, minute)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date and time ({fmt})") from None
    return moment.strftime("%Y-%m-%dT%H:%M:00") + uk_offset(moment)


def decimal(text: str) -> int | float:
    if not DECIMAL.match(text):
        raise ValueError(f"{text!r} is not a decimal number")
    return float(text) if "." in text else int(text)


def integer(text: str) -> int:
    if not INTEGER.match(text):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def snomed(text: str) -> str:
    """A SNOMED CT concept id: digits, concept partition, Verhoeff check digit."""
    if not snomed_concept_id_valid(text):
        raise ValueError(f"{text!r} is not a SNOMED CT concept id")
    return text


def icd10(text: str) -> str:
    """A 4-character HES/SUS ICD-10 code in WHO form: N390 -> N39.0, R11X -> R11, S7200 -> S72.00."""
    match = ICD10.match(text.upper())
    if match is None:
        raise ValueError(f"{text!r} is not an ICD-10 code (letter, two digits, 4th character)")
    category, fourth, fifth = match.groups()
    if fourth is None or fourth == "X":
        if fifth is not None:
            raise ValueError(f"{text!r} is not an ICD-10 code (a filler X cannot be followed by a digit)")
        return category
    return f"{category}.{fourth}{fifth or ''}"


def read_code(text: str) -> str:
    if not read_code_valid(text):
        raise ValueError(f"{text!r} is not a Read code (5 characters)")
    return text


def ods(text: str) -> str:
    if not ODS.match(text):
        raise ValueError(f"{text!r} is not an ODS code (3 to 10 upper-case letters or digits)")
    return text


def gmc(text: str) -> str:
    if not GMC.match(text):
        raise ValueError(f"{text!r} is not a GMC number (7 digits)")
    return text


def string(text: str) -> str:
    return text


#: converters that need no options, by the column type names the specs use
SIMPLE: dict[str, Callable[[str], Any]] = {
    "string": string,
    "nhs-number": nhs_number,
    "decimal": decimal,
    "integer": integer,
    "snomed": snomed,
    "icd10": icd10,
    "read-code": read_code,
    "ods": ods,
    "gmc": gmc,
}
