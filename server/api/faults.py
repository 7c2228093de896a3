"""Database faults as answers: a lost connection, a statement stopped at its limit, a commit of unknown outcome."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

from ..fhir.outcome import FhirError, Issue
from ..store.db import OutcomeUnknown, connection_lost
from ..store.deadlines import statement_cancelled

SHOWN_REQUEST = 300  # characters of a request's path and query an answer repeats
READING_METHODS = ("GET", "HEAD")
UNKNOWN_OUTCOME = (
    "The connection to the database was lost while this change was being committed, so whether it was made is "
    "unknown. Check before repeating it: read the resource (or search for it by its identifier), or repeat it "
    "in a form that is safe to repeat: a create with If-None-Exist on its identifier, a conditional update "
    "(PUT {type}?identifier=...), an update or delete with If-Match on the version you last read, or a "
    "transaction whose entries are conditional."
)


def described(method: str, path: str, params: list[tuple[str, str]]) -> str:
    """A request as `METHOD path?query`, cut to a length fit for an answer or a log line."""
    shown = f"{method} {path}" + (f"?{urlencode(params)}" if params else "")
    return shown if len(shown) <= SHOWN_REQUEST else shown[:SHOWN_REQUEST] + "..."


def database_fault(exc: BaseException, method: str, path: str, params: list[tuple[str, str]],
                   limit_ms: int | None) -> FhirError | None:
    """The answer to a database fault (None when `exc` is not one): 503 with an OperationOutcome saying
    what happened to the request and what the client can do."""
    writing = method not in READING_METHODS
    not_made = "; the change was not made" if writing else ""
    if isinstance(exc, OutcomeUnknown):
        return FhirError(503, [Issue("transient", UNKNOWN_OUTCOME)])
    if statement_cancelled(exc):
        limit = f" ({limit_ms / 1000:g} s)" if limit_ms else ""
        searching = not writing or path.endswith("_search")
        what = "The search" if searching else "The request"
        advice = ("narrow it: fewer or more selective parameters, fewer values, _include or chains, a smaller "
                  "_count" if searching else "try again later or split the work into smaller requests")
        return FhirError(503, [Issue("too-costly", f"{what} {described(method, path, params)} ran past the time a "
                                                   f"database statement may take{limit} and was stopped{not_made}: "
                                                   f"{advice}")])
    if connection_lost(exc):
        return FhirError(503, [Issue("transient", f"The database is not reachable at the moment{not_made}; try "
                                                  "again shortly")], headers={"Retry-After": "1"})
    if too_deep(exc):
        return FhirError(400, [Issue("too-costly", f"The request {described(method, path, params)} nests deeper than "
                                                   "this database can parse (each chained step carries the caller's "
                                                   f"access rules){not_made}: use fewer chained steps or _has "
                                                   "levels")])
    return None


def too_deep(exc: BaseException) -> bool:
    """SQLite refused a statement for its nesting (a chain of chains, each step with the caller's reach)."""
    cause = getattr(exc, "orig", None) or exc
    return isinstance(cause, sqlite3.OperationalError) and any(
        words in str(cause) for words in ("parser stack overflow", "Expression tree is too large"))
