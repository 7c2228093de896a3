"""Checks of client text shared by every layer: small decimal integers and control characters."""

from __future__ import annotations

import re

DIGITS = re.compile(r"[0-9]{1,18}")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def plain_int(text: str) -> int | None:
    """The value of ASCII decimal digits that fit in 63 bits, or None (no '²', no signs, no overflow)."""
    return int(text) if isinstance(text, str) and DIGITS.fullmatch(text) else None


def has_control(text: str) -> bool:
    """Whether text carries control characters (NUL and the like) that no FHIR value or database takes."""
    return bool(CONTROL.search(text))
