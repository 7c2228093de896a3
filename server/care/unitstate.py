"""What a write listener notes per unit of work (a repository or a transaction) until the unit ends."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class PerUnit(Generic[K, V]):
    """Notes per unit, made on first use and forgotten when taken (or when the unit is garbage)."""

    def __init__(self, factory: Callable[[], V]) -> None:
        self.factory = factory
        self.notes: weakref.WeakKeyDictionary[K, V] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def of(self, unit: K) -> V:
        with self.lock:
            found = self.notes.get(unit)
            if found is None:
                found = self.notes[unit] = self.factory()
            return found

    def take(self, unit: K) -> V | None:
        with self.lock:
            return self.notes.pop(unit, None)
