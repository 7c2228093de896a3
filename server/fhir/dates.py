"""FHIR date, dateTime and instant values as microsecond ranges, and instant formatting."""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from functools import lru_cache

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS = timedelta(microseconds=1)
MIN_US = -(2**62)
MAX_US = 2**62

DATE_PATTERN = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class DateFormatError(ValueError):
    """A value that is not a FHIR date, dateTime or instant."""


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // MICROS


def from_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def format_instant(micros: int) -> str:
    """Render microseconds as a FHIR instant in UTC (`2026-11-23T10:15:02.123456Z`)."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{second_text(seconds)}.{fraction:06d}Z"


@lru_cache(maxsize=8192)
def second_text(second: int) -> str:
    """A whole second since the epoch as `2026-11-23T10:15:02` (cached: writes share a few seconds)."""
    return (EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")


def format_http_date(micros: int) -> str:
    """Render microseconds as an HTTP date for Last-Modified."""
    return http_date_of_second(micros // 1_000_000)


@lru_cache(maxsize=8192)
def http_date_of_second(second: int) -> str:
    """An HTTP date for a whole second (cached: loaded resources share a few thousand seconds)."""
    return formatdate(second, usegmt=True)


def parse_http_date(text: str) -> int | None:
    """Parse an HTTP date (If-Modified-Since) to microseconds; None when unreadable."""
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_us(moment)


def parse_range(text: str) -> tuple[int, int]:
    """The inclusive microsecond range a FHIR date/dateTime/instant covers at its precision."""
    match = DATE_PATTERN.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise DateFormatError(f"'{text}' is not a valid FHIR date, dateTime or instant")
    parts = match.groupdict()
    year = int(parts["year"])
    if year < 1:
        raise DateFormatError(f"'{text}' has year 0000")
    try:
        if parts["month"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            end = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else datetime.max.replace(tzinfo=UTC)
            return to_us(start), to_us(end) - 1
        month = int(parts["month"])
        if parts["day"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            return to_us(start), to_us(start + timedelta(days=days)) - 1
        day = int(parts["day"])
        if parts["hour"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            return to_us(start), to_us(start + timedelta(days=1)) - 1
        offset = timedelta(0)
        tz = parts["tz"]
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        hour, minute = int(parts["hour"]), int(parts["minute"])
        if parts["second"] is None:
            start = datetime(year, month, day, hour, minute, tzinfo=UTC) - offset
            return to_us(start), to_us(start + timedelta(minutes=1)) - 1
        second = int(parts["second"])
        fraction = parts["fraction"]
        start = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC) - offset
        if fraction is None:
            return to_us(start), to_us(start + timedelta(seconds=1)) - 1
        digits = len(fraction)
        micros = int((fraction + "000000")[:6])
        start_us = to_us(start) + micros
        width = 10 ** max(0, 6 - digits)
        return start_us, start_us + width - 1
    except (ValueError, OverflowError) as exc:
        raise DateFormatError(f"'{text}' is not a valid date: {exc}") from exc


def parse_instant(text: str) -> int:
    """The start of a FHIR instant or dateTime, in microseconds."""
    return parse_range(text)[0]
