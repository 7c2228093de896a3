"""Statement deadlines: how long a request's database statements may run, on PostgreSQL and SQLite."""

from __future__ import annotations

import sqlite3
import time
import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection

SESSION_LIMIT = "statement_ms"  # Connection.info key: the statement_timeout a kept session runs under
SQLITE_PROGRESS_STEPS = 1000  # SQLite virtual machine steps between two looks at the deadline


@dataclass(frozen=True)
class StatementLimits:
    """Milliseconds one database statement may run: in a search or read, in a write, in an operation
    (`$stratify`, `$everything`, `$outcomes`...). 0 means no limit."""

    search_ms: int = 10000
    write_ms: int = 30000
    operation_ms: int = 120000


class DeadlineConnection(sqlite3.Connection):
    """An SQLite connection whose statements stop (`interrupted`) once `deadline` (monotonic) has passed."""

    deadline: float | None = None


def session_options(statement_ms: int | None, *settings: str) -> dict[str, Any]:
    """psycopg connect arguments opening every session with these `-c` settings and the statement_timeout."""
    options = [*settings, *([f"-c statement_timeout={int(statement_ms)}"] if statement_ms is not None else [])]
    return {"options": " ".join(options)} if options else {}


def prepare_sqlite(raw: Any) -> None:
    """Give a new SQLite connection the progress handler that enforces its deadline."""
    if not isinstance(raw, DeadlineConnection):
        return
    owner = weakref.ref(raw)

    def past_deadline() -> int:
        connection = owner()
        deadline = connection.deadline if connection is not None else None
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    raw.set_progress_handler(past_deadline, SQLITE_PROGRESS_STEPS)


def limit_statements(connection: Connection, statement_ms: int, session_ms: int | None, *, writing: bool) -> None:
    """Bound the statements of this use of a connection to `statement_ms` each. PostgreSQL: a transaction
    sets `SET LOCAL statement_timeout` when it needs other than its session's (`session_ms`); an autocommit
    reading session is set once and remembers it. SQLite: a deadline for the whole use."""
    raw = connection.connection.driver_connection
    if isinstance(raw, DeadlineConnection):
        raw.deadline = time.monotonic() + statement_ms / 1000 if statement_ms else None
        return
    if connection.dialect.name != "postgresql":
        return
    current = connection.info.get(SESSION_LIMIT, session_ms)
    if current == statement_ms:
        return
    if writing:
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(statement_ms)}")
        return
    connection.exec_driver_sql(f"SET statement_timeout = {int(statement_ms)}")
    connection.info[SESSION_LIMIT] = statement_ms


def clear_deadline(connection: Connection) -> None:
    """An SQLite connection going back for reuse carries no deadline."""
    if not connection.closed and not connection.invalidated:
        raw = connection.connection.driver_connection
        if isinstance(raw, DeadlineConnection):
            raw.deadline = None


def statement_cancelled(exc: BaseException | None) -> bool:
    """Whether an error (from SQLAlchemy or the driver, or one it came from) is a statement stopped at its
    deadline (PostgreSQL's statement_timeout, SQLite's interrupt)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return True
        if isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False
