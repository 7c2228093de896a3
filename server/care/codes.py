"""Code matching: ICD-10 categories, ranges and prefixes in the WHO form hospitals code."""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORY = re.compile(r"^[A-Z][0-9]{2}$")
CODE = re.compile(r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?$")


def icd_key(code: str) -> str:
    """An ICD-10 code without its dot, upper case, with a HES filler `X` dropped (`R11X` -> `R11`)."""
    key = code.strip().upper().replace(".", "")
    if len(key) == 4 and key.endswith("X"):
        key = key[:3]
    return key


@dataclass(frozen=True)
class IcdMatcher:
    """A category range (`W00-W19`) or a code prefix (`E86`, `K59.0`)."""

    low: str
    high: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> IcdMatcher:
        text = text.strip().upper()
        if "-" in text:
            low, high = (part.strip() for part in text.split("-", 1))
            if not (CATEGORY.match(low) and CATEGORY.match(high)) or low > high:
                raise ValueError(f"{text!r} is not a range of 3-character ICD-10 categories (W00-W19)")
            return cls(low, high)
        if not CODE.match(text):
            raise ValueError(f"{text!r} is not an ICD-10 code (E86, K59.0, S72.00)")
        return cls("", "", icd_key(text))

    def matches(self, code: str) -> bool:
        key = icd_key(code)
        if self.prefix:
            return key.startswith(self.prefix)
        return self.low <= key[:3] <= self.high

    def __str__(self) -> str:
        return self.prefix if self.prefix else f"{self.low}-{self.high}"
