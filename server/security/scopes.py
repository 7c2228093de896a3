"""SMART scopes: v2 (`system/CarePlan.rs?category=...`) and v1 (`.read`, `.write`, `.*`) parsed to one form."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

LETTERS = "cruds"
V1_LETTERS = {"read": "rs", "write": "cud", "*": "cruds"}
CONTEXTS = ("system", "user", "patient")
INTERACTION_LETTERS = {
    "create": "c", "read": "r", "vread": "r", "update": "u", "patch": "u", "delete": "d",
    "search": "s", "history": "r", "history-instance": "r", "history-type": "s", "history-system": "s",
}


class ScopeError(ValueError):
    """A scope string that is not a SMART resource scope."""

KEPT = "/:|,;$@!*'()"
"""Characters a constraint's name or value keeps as they are when a scope is written out: the rest of what a URL
query gives a meaning (space, `%`, `&`, `=`, `+`, `#`, `?`) is percent-encoded, so the scope reads back the same."""

@dataclass(frozen=True)
class Scope:
    """One resource scope: its context, resource type (`*` for all), letters and search constraints."""

    context: str
    type: str
    letters: frozenset[str]
    constraints: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        """The v2 spelling of this scope."""
        letters = "".join(letter for letter in LETTERS if letter in self.letters)
        query = "&".join(f"{quote(name, safe=KEPT)}={quote(value, safe=KEPT)}" for name, value in self.constraints)
        return f"{self.context}/{self.type}.{letters}" + (f"?{query}" if query else "")

    def covers(self, other: Scope) -> bool:
        """Whether this scope grants at least what `other` asks (same context, type and constraints)."""
        return (self.context == other.context and self.type in ("*", other.type)
                and other.letters <= self.letters
                and (not self.constraints or set(self.constraints) <= set(other.constraints)))

    def narrowed_to(self, granted: Scope) -> Scope | None:
        """What of this requested scope a registered scope grants, or None (a request for every type is
        cut down to the registered scope's type)."""
        if self.context != granted.context or (granted.type != "*" and self.type not in ("*", granted.type)):
            return None
        letters = self.letters & granted.letters
        if not letters:
            return None
        constraints = tuple(dict.fromkeys(self.constraints + granted.constraints))
        resource_type = granted.type if self.type == "*" else self.type
        return Scope(self.context, resource_type, letters, constraints)


def parse_scope(text: str) -> Scope:
    """A SMART v1 or v2 resource scope; raises ScopeError for anything else."""
    context, slash, rest = text.partition("/")
    if not slash or context not in CONTEXTS:
        raise ScopeError(f"{text!r} is not a SMART resource scope (system/Type.letters)")
    rest, _, query = rest.partition("?")
    resource_type, dot, access = rest.rpartition(".")
    if not dot or not resource_type or not (resource_type == "*" or resource_type.isalnum()):
        raise ScopeError(f"{text!r} names no resource type")
    if access in V1_LETTERS:
        if query:
            raise ScopeError(f"{text!r}: SMART v1 scopes take no search constraints")
        letters = frozenset(V1_LETTERS[access])
    elif access and all(letter in LETTERS for letter in access) and list(access) == sorted(
            access, key=LETTERS.index) and len(set(access)) == len(access):
        letters = frozenset(access)
    else:
        raise ScopeError(f"{text!r}: access must be letters of 'cruds' in that order, or read, write or *")
    constraints = tuple(parse_qsl(query, keep_blank_values=True)) if query else ()
    if any(not name or not value for name, value in constraints):
        raise ScopeError(f"{text!r}: a search constraint needs a name and a value")
    return Scope(context, resource_type, letters, constraints)


def parse_scopes(text: str) -> tuple[list[Scope], list[str]]:
    """The resource scopes of a space-separated list, and the words that are not resource scopes."""
    scopes: list[Scope] = []
    others: list[str] = []
    for word in text.split():
        try:
            scopes.append(parse_scope(word))
        except ScopeError:
            others.append(word)
    return scopes, others


@dataclass(frozen=True)
class ScopeSet:
    """The scopes a caller holds, asked per interaction and resource type."""

    scopes: tuple[Scope, ...]
    answers: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)
    """(letter, resource type) -> whether granted, as asked (a caller's set is asked the same at every request)"""

    @classmethod
    def of(cls, text: str) -> ScopeSet:
        scopes, _others = parse_scopes(text)
        return cls(tuple(scopes))

    @classmethod
    def everything(cls) -> ScopeSet:
        return cls((Scope("system", "*", frozenset(LETTERS)),))

    def text(self) -> str:
        return " ".join(scope.text() for scope in self.scopes)

    def matching(self, letter: str, resource_type: str) -> list[Scope]:
        """The scopes that grant `letter` on `resource_type`."""
        return [s for s in self.scopes if letter in s.letters and s.type in ("*", resource_type)]

    def allows(self, letter: str, resource_type: str) -> bool:
        key = (letter, resource_type)
        answer = self.answers.get(key)
        if answer is None:
            answer = self.answers[key] = bool(self.matching(letter, resource_type))
        return answer

    def constraints(self, letter: str, resource_type: str) -> list[tuple[tuple[str, str], ...]] | None:
        """The search constraints of the granting scopes (OR of ANDs); None when one grants without any."""
        found = self.matching(letter, resource_type)
        if any(not scope.constraints for scope in found):
            return None
        return [scope.constraints for scope in found]

    def narrow(self, requested: list[Scope]) -> ScopeSet:
        """The requested scopes cut down to what these (registered) scopes grant."""
        granted: list[Scope] = []
        for asked in requested:
            for registered in self.scopes:
                narrowed = asked.narrowed_to(registered)
                if narrowed is not None and not any(g.covers(narrowed) for g in granted):
                    granted.append(narrowed)
        return ScopeSet(tuple(granted))

