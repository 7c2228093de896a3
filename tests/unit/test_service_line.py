"""Planned units of a package of care in words, singular or plural as the amount needs."""

from __future__ import annotations

import pytest

from server.care.record import per_week


@pytest.mark.parametrize(("amount", "unit", "words"), [
    (10.5, "Hours", "10.5 hours a week"),
    (1, "Hours", "1 hour a week"),
    (7, "Nights", "7 nights a week"),
    (1, "Sessions", "1 session a week"),
    (1, "Meals", "1 meal a week"),
    (2, "Days", "2 days a week"),
    (2, "hour", "2 hours a week"),
    (1, "Weeks", "weekly"),
    (0.5, "Weeks", "0.5 of each week"),
])
def test_units_a_week_read_right(amount: float, unit: str, words: str) -> None:
    assert per_week(amount, unit) == words
