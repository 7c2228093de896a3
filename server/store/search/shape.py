"""Limits on a search's shape, checked on the parsed query before any SQL is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...fhir.outcome import FhirError, Issue

if TYPE_CHECKING:
    from .parse import SearchQuery


@dataclass(frozen=True)
class SearchShape:
    """How large a search may be: each criterion is a semi-join, each chain level and `_has` a nested one
    (a chain without a target type one per possible type), each `_include` a query per round."""

    criteria: int = 40  # search parameters, a repeated one counted each time (they AND)
    values: int = 200  # comma-separated values of one parameter (they OR)
    all_values: int = 1000  # values of all parameters together
    nodes: int = 200  # criteria including every chain level and `_has`, for every target type
    includes: int = 20  # `_include` and `_revinclude` items
    iterating: int = 4  # of which `:iterate`


SHAPE = SearchShape()


def check_shape(query: SearchQuery, shape: SearchShape = SHAPE) -> None:
    """400, naming what to narrow, when a parsed search is larger than `shape` allows."""
    if len(query.criteria) > shape.criteria:
        refuse(f"The search has {len(query.criteria)} search parameters; at most {shape.criteria} are allowed. "
               "Drop repeated or redundant parameters (a repeated parameter ANDs; to OR values, list them "
               "comma-separated in one parameter)", query.criteria[shape.criteria].raw[0])
    total = 0
    for criterion in query.criteria:
        values = len(criterion.values)
        if values > shape.values:
            refuse(f"'{criterion.raw[0]}' has {values} values; at most {shape.values} are allowed in one "
                   "parameter: split the search into several", criterion.raw[0])
        total += values
        if total > shape.all_values:
            refuse(f"The search has more than {shape.all_values} values in all its parameters: split it into "
                   "several", criterion.raw[0])
    if len(query.includes) > shape.includes:
        refuse(f"The search asks for {len(query.includes)} _include/_revinclude items; at most "
               f"{shape.includes} are allowed: ask for fewer", "_include")
    iterating = sum(1 for include in query.includes if include.iterate)
    if iterating > shape.iterating:
        refuse(f"The search has {iterating} ':iterate' includes; at most {shape.iterating} are allowed: "
               "ask for fewer, or include without iterating", "_include")


def check_expansion(expanded: int, name: str, shape: SearchShape = SHAPE) -> None:
    """400 once parsing a search has made more than `shape.nodes` criteria (checked as they are made, so an
    untyped chain fanning out over many target types stops early)."""
    if expanded > shape.nodes:
        refuse(f"The search's parameters, chains and reverse chains expand to more than {shape.nodes} criteria: "
               "give chained references their target type ('subject:Patient.name'), or use fewer parameters "
               "or shorter chains", name)


def refuse(diagnostics: str, parameter: str) -> None:
    raise FhirError(400, [Issue("too-costly", diagnostics, (parameter,))])
