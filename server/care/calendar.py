"""Dates for the programme: calendar months and weeks, working days and bank holidays in England."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def shift(day: date, *, months: int = 0, weeks: int = 0, days: int = 0) -> date:
    """A date moved by calendar months, then weeks and days."""
    return add_months(day, months) + timedelta(weeks=weeks, days=days)


def parse_day(text: str | None) -> date | None:
    """The calendar date of a FHIR date or dateTime (its first ten characters), or None."""
    if not text or len(text) < 4:
        return None
    try:
        if len(text) >= 10:
            return date.fromisoformat(text[:10])
        if len(text) == 7:
            return date.fromisoformat(text + "-01")
        return date(int(text[:4]), 1, 1)
    except ValueError:
        return None


def age_on(birth: date, day: date) -> int:
    """Age in completed years on a day."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def iso_now() -> str:
    """The current instant as a FHIR dateTime in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class WorkingDays:
    """Monday to Friday except bank holidays (England)."""

    def __init__(self, holidays: Iterable[date]) -> None:
        self.holidays = frozenset(holidays)
        self.first = min(self.holidays, default=None)
        self.last = max(self.holidays, default=None)

    def is_working(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def covers(self, day: date) -> bool:
        """Whether the holiday calendar is known for the day's year."""
        return self.first is not None and self.last is not None and self.first.year <= day.year <= self.last.year

    def add(self, day: date, count: int) -> date:
        """The working day `count` working days after `day` (day itself not counted)."""
        current = day
        remaining = count
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working(current):
                remaining -= 1
        return current
