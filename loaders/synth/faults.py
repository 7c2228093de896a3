"""Implausible rows: values that convert but cannot be true (the mappings' plausibility rules must reject them)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

from .layout import DMY_HM, ISO, ISO_HM, FileSpec

#: the most of a unit a week holds (a week has 168 hours, 7 days, 7 nights)
WEEK = {"Hours": 168, "Days": 7, "Nights": 7}
PLAUSIBILITY_KINDS = ("future_date", "end_before_start", "death_before_birth", "implausible_age", "bad_quantity")

Spoil = Callable[[FileSpec, list[str], date, random.Random], tuple[str, str] | None]


def parse(text: str, style: str) -> date | None:
    """The date of a value written in a column style (None when blank or not a date)."""
    try:
        if style in (ISO, ISO_HM):
            return date.fromisoformat(text[:10])
        return datetime.strptime(text[:10], "%d/%m/%Y").date()
    except ValueError:
        return None


def write(day: date, style: str, time: str = "10:15") -> str:
    """A date in a column style (date-time styles keep ``time``)."""
    if style == ISO:
        return day.isoformat()
    if style == ISO_HM:
        return f"{day.isoformat()}T{time}"
    text = day.strftime("%d/%m/%Y")
    return f"{text} {time}" if style == DMY_HM else text


def time_of(text: str, style: str) -> str:
    """The HH:MM of a date-time value (both date-time styles put it at the same place)."""
    return text[11:16] if style in (ISO_HM, DMY_HM) and len(text) >= 16 else "10:15"


def future_date(spec: FileSpec, row: list[str], extract: date, rng: random.Random) -> tuple[str, str] | None:
    """A date that must be in the past moved after the extract date (by a day to a year, or to 2099)."""
    if not spec.past:
        return None
    column, style = spec.past[rng.randrange(len(spec.past))]
    ci = spec.col(column)
    day = date(2099, 1, 1) if rng.random() < 0.2 else extract + timedelta(days=rng.randint(1, 365))
    row[ci] = write(day, style, time_of(row[ci], style))
    return column, row[ci]


def end_before_start(spec: FileSpec, row: list[str], extract: date, rng: random.Random) -> tuple[str, str] | None:
    """An end a day to a year before its start."""
    spans = [(s, e, style) for s, e, style in spec.spans if parse(row[spec.col(s)], style) is not None]
    if not spans:
        return None
    start, end, style = spans[rng.randrange(len(spans))]
    began = parse(row[spec.col(start)], style)
    assert began is not None
    ci = spec.col(end)
    row[ci] = write(began - timedelta(days=rng.randint(1, 365)), style, time_of(row[spec.col(start)], style))
    return end, row[ci]


def death_before_birth(spec: FileSpec, row: list[str], extract: date, rng: random.Random) -> tuple[str, str] | None:
    """A date of death a day to ten years before the date of birth."""
    if spec.birth is None:
        return None
    birth, death, style = spec.birth
    born = parse(row[spec.col(birth)], style)
    if born is None:
        return None
    ci = spec.col(death)
    row[ci] = write(born - timedelta(days=rng.randint(1, 3650)), style)
    return death, row[ci]


def implausible_age(spec: FileSpec, row: list[str], extract: date, rng: random.Random) -> tuple[str, str] | None:
    """A date of birth 126 to 160 years before the extract date (and before any date of death)."""
    if spec.birth is None:
        return None
    birth, death, style = spec.birth
    until = parse(row[spec.col(death)], style) or extract
    ci = spec.col(birth)
    row[ci] = write(date(until.year - rng.randint(127, 160), 1, 1) + timedelta(days=rng.randrange(365)), style)
    return birth, row[ci]


def bad_quantity(spec: FileSpec, row: list[str], extract: date, rng: random.Random) -> tuple[str, str] | None:
    """A negative quantity, or planned units more than a week holds."""
    if not spec.amounts:
        return None
    column, unit_column = spec.amounts[rng.randrange(len(spec.amounts))]
    ci = spec.col(column)
    most = WEEK.get(row[spec.col(unit_column)]) if unit_column else None
    if most is not None and rng.random() < 0.5:
        row[ci] = str(most + rng.randint(1, most))
    else:
        row[ci] = f"-{rng.randint(1, 40)}"
    return column, row[ci]


SPOILERS: dict[str, Spoil] = {"future_date": future_date, "end_before_start": end_before_start,
                              "death_before_birth": death_before_birth, "implausible_age": implausible_age,
                              "bad_quantity": bad_quantity}


def spoil(kind: str, spec: FileSpec, row: list[str], extract: date, rng: random.Random) -> tuple[str, str]:
    """(kind, ``column=value``) after making ``row`` implausible; a kind the file cannot carry becomes a
    future date (every file has a date that must not be after the extract date)."""
    done = SPOILERS[kind](spec, row, extract, rng)
    if done is None:
        kind, done = "future_date", future_date(spec, row, extract, rng)
    assert done is not None, spec.name
    column, value = done
    return kind, f"{column}={value}"
