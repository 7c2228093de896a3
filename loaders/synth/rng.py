"""Seed mixing (splitmix64), per-person random streams and small sampling helpers."""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")
MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """One splitmix64 round: a fast, well-mixed 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def mix(*parts: int | str) -> int:
    """Combine ints and strings into one 64-bit seed, stable across runs and platforms."""
    h = 0x243F6A8885A308D3
    for part in parts:
        if isinstance(part, str):
            value = int.from_bytes(hashlib.blake2b(part.encode(), digest_size=8).digest(), "big")
        else:
            value = part & MASK64
        h = splitmix64(h ^ value)
    return h


def unit(*parts: int | str) -> float:
    """A deterministic uniform number in [0, 1) derived from the parts."""
    return mix(*parts) / 18446744073709551616.0


def make_rng(*parts: int | str) -> random.Random:
    """A private random stream for the given parts."""
    return random.Random(mix(*parts))


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson draw (fine for the small means used per month)."""
    if lam <= 0.0:
        return 0
    limit = math.exp(-lam)
    n = 0
    p = rng.random()
    while p > limit:
        n += 1
        p *= rng.random()
    return n


class Weighted(Generic[T]):
    """Weighted choice over a fixed list, by bisection on cumulative weights."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("Weighted needs matching, non-empty items and weights")
        self.items = list(items)
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect_right(self.cum, rng.random() * self.total)]
