"""NHS numbers: the modulus-11 check, a unique allocator in the 999 test range, noise helpers."""

from __future__ import annotations

import random

from .rng import mix

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
#: base numbers 999 000 000 .. 999 899 999 belong to people; 999 9xx xxx to injected rows
PERSON_SPACE = 900_000
_STEP = 7919 * 13  # coprime with 900 000, so j -> (j * STEP + offset) % SPACE is a permutation


def check_digit(nine: str) -> int | None:
    """The check digit for nine digits, or None when the remainder makes them unusable (10)."""
    total = sum(int(c) * w for c, w in zip(nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid(number: str) -> bool:
    """True for ten digits (spaces allowed) whose last digit is the modulus-11 check digit."""
    digits = number.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    return check_digit(digits[:9]) == int(digits[9])


def spaced(number: str) -> str:
    """'9434765919' -> '943 476 5919', the way people and some systems write it."""
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def corrupt(number: str) -> str:
    """Same first nine digits, wrong check digit: fails the modulus-11 check."""
    good = check_digit(number[:9])
    bad = (int(number[9]) + 1) % 10
    if good is not None and bad == good:
        bad = (bad + 1) % 10
    return number[:9] + str(bad)


def spare_number(rng: random.Random) -> str:
    """A valid number outside the people space, for injected rows that must not collide."""
    while True:
        nine = f"999{PERSON_SPACE + rng.randrange(1_000_000 - PERSON_SPACE):06d}"
        check = check_digit(nine)
        if check is not None:
            return nine + str(check)


class NhsAllocator:
    """Hands out unique valid test-range numbers: person i always gets the i-th number."""

    __slots__ = ("_j", "_numbers", "_offset")

    def __init__(self, seed: int) -> None:
        self._offset = mix(seed, "nhs") % PERSON_SPACE
        self._numbers: list[str] = []
        self._j = 0

    def number(self, idx: int) -> str:
        numbers = self._numbers
        while len(numbers) <= idx:
            if self._j >= PERSON_SPACE:
                raise ValueError("the NHS test range is exhausted (too many people)")
            base = (self._j * _STEP + self._offset) % PERSON_SPACE
            self._j += 1
            nine = f"999{base:06d}"
            check = check_digit(nine)
            if check is not None:
                numbers.append(nine + str(check))
        return numbers[idx]
