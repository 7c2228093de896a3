"""Month arithmetic on day ordinals and cached formatters for the extract date styles."""

from __future__ import annotations

import re
from datetime import date

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: str) -> int:
    """'2026-10' -> a month index (year * 12 + month - 1)."""
    m = _MONTH_RE.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"month must look like YYYY-MM, got {text!r}")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def month_label(mi: int) -> str:
    return f"{mi // 12:04d}-{mi % 12 + 1:02d}"


def month_start(mi: int) -> int:
    """Ordinal of the first day of the month."""
    return date(mi // 12, mi % 12 + 1, 1).toordinal()


def month_end(mi: int) -> int:
    """Ordinal of the last day of the month."""
    return month_start(mi + 1) - 1


def ordinal(y: int, m: int, d: int) -> int:
    return date(y, m, d).toordinal()


class DateFmt:
    """Caching formatters: ISO (GP, hospital), DD/MM/YYYY (SWIFT) and the datetime styles."""

    __slots__ = ("_dmy", "_iso")

    def __init__(self) -> None:
        self._iso: dict[int, str] = {}
        self._dmy: dict[int, str] = {}

    def iso(self, o: int | None) -> str:
        if o is None:
            return ""
        s = self._iso.get(o)
        if s is None:
            s = date.fromordinal(o).isoformat()
            self._iso[o] = s
        return s

    def dmy(self, o: int | None) -> str:
        if o is None:
            return ""
        s = self._dmy.get(o)
        if s is None:
            d = date.fromordinal(o)
            s = f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
            self._dmy[o] = s
        return s

    def dmy_hm(self, o: int, minute: int) -> str:
        return f"{self.dmy(o)} {minute // 60:02d}:{minute % 60:02d}"

    def iso_hm(self, o: int | None, minute: int) -> str:
        if o is None:
            return ""
        return f"{self.iso(o)}T{minute // 60:02d}:{minute % 60:02d}"
