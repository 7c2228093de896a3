"""Database engines for SQLite (the embedded default) and PostgreSQL, and their transactions."""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, PendingRollbackError

from .deadlines import (
    DeadlineConnection,
    StatementLimits,
    clear_deadline,
    limit_statements,
    prepare_sqlite,
    session_options,
)

#: SQLSTATEs of a connection the server ended: connection exceptions (class 08), and an administrator's
#: termination, a crash or a shutdown of the server (57P01-57P03)
LOST_CONNECTION_STATES = ("57P01", "57P02", "57P03")
STATEMENT_CACHE = 1500
"""Compiled statements each engine keeps (SQLAlchemy's default is 500): a caller's reach is written into the text
of its statements, so each organisation's searches are kept apart."""
CONNECT_TIMEOUT = 5  # seconds to open a PostgreSQL connection: an unreachable host fails fast (503), not after minutes


class OutcomeUnknown(Exception):
    """The connection was lost while a transaction committed: the server cannot know whether it did."""


def connection_lost(exc: BaseException | None) -> bool:
    """Whether an error (from SQLAlchemy or straight from the driver, or one it was raised from) means the
    database connection is gone (terminated, restarted, failed over, network): its connection must be replaced."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, PendingRollbackError) and "invalid transaction" in str(exc):
            return True  # a statement after the connection was found lost (and the error caught) in a transaction
        if isinstance(exc, psycopg.InterfaceError):
            return True
        if isinstance(exc, psycopg.OperationalError):
            state = exc.sqlstate
            if state is None or state.startswith("08") or state in LOST_CONNECTION_STATES:
                return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def driver_broken(connection: Connection) -> bool:
    """Whether the driver connection under a SQLAlchemy connection is closed or broken."""
    if connection.closed or connection.invalidated:
        return True
    raw = connection.connection.driver_connection
    return bool(getattr(raw, "closed", False) or getattr(raw, "broken", False))


def normalise_url(url: str) -> str:
    """Pick the drivers this project uses (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False, statement_ms: int | None = None) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and explicit BEGIN handling. Pooled connections are
    not pinged as they are taken (a round trip per unit of work): a statement that meets a connection the
    database dropped makes SQLAlchemy replace the pool's older connections, and the API, the token check and
    the workers run such a unit again on a new one (`connection_lost`).
    `statement_ms` bounds every statement (PostgreSQL's statement_timeout; on SQLite a per-use deadline)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, hide_parameters=True, query_cache_size=STATEMENT_CACHE,
                               connect_args={"check_same_thread": False, "timeout": 60, "factory": DeadlineConnection})
        configure_sqlite(engine)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=3600, pool_pre_ping=False,
        hide_parameters=True, query_cache_size=STATEMENT_CACHE,
        connect_args={**session_options(statement_ms), "connect_timeout": CONNECT_TIMEOUT},
    )


def configure_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy own transactions on SQLite and take the write lock up front for writes."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()
        prepare_sqlite(dbapi_connection)

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("reading"):
            return  # reads run in SQLite's autocommit mode: no transaction to begin
        mode = "IMMEDIATE" if options.get("writing") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


SQLITE_BUSY_MS = 60000  # how long an SQLite statement waits for another connection's write lock
BRIEF_LOCK_WAIT = "100ms"


def write_without_waiting(connection: Connection, sql: str, params: tuple[Any, ...]) -> bool:
    """Run one write statement (`?` placeholders) in its own short transaction on a reading connection,
    giving up rather than waiting long for another transaction's locks; whether it ran."""
    raw: Any = connection.connection.driver_connection
    if is_postgres(connection):
        try:
            with raw.transaction():
                raw.execute(f"SET LOCAL lock_timeout = '{BRIEF_LOCK_WAIT}'")
                raw.execute(sql.replace("?", "%s"), params)
        except psycopg.errors.LockNotAvailable:
            return False
        return True
    raw.execute("PRAGMA busy_timeout=0")
    try:
        raw.execute(sql, params)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        return False
    finally:
        raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    return True


def is_postgres(connection: Connection | Engine) -> bool:
    return connection.dialect.name == "postgresql"


READ_CONNECTION_LIFETIME = 3600.0


class KeptReadConnections:
    """Autocommit read connections kept checked out between reads, so a read skips the pool's
    checkout and checkin. Any thread takes an idle one (or opens one) and gives it back after; at most
    `keep` stay idle, a connection is dropped after a database error (SQLAlchemy's or the driver's,
    for reads that use the driver directly) or an hour, and all are closed on dispose. When one is found
    lost, every kept connection opened before it is dropped too (a restart or failover ends them all);
    the pool checks the ones it hands out."""

    def __init__(self, engine: Engine, keep: int) -> None:
        self.engine = engine
        self.keep = keep
        self.idle: deque[tuple[Connection, float]] = deque()  # append and pop are atomic
        self.lost_at = float("-inf")  # when a kept connection was last found lost

    @contextmanager
    def use(self) -> Iterator[Connection]:
        connection, born = self.take()
        try:
            yield connection
        except DBAPIError as exc:
            self.drop(connection, exc)
            raise
        except BaseException as exc:
            if connection_lost(exc) or driver_broken(connection):
                self.drop(connection, exc)
            else:
                self.give_back(connection, born)
            raise
        self.give_back(connection, born)

    def drop(self, connection: Connection, exc: BaseException) -> None:
        """Close a connection after an error; when the error says it was lost, the older ones go too."""
        if connection_lost(exc) or driver_broken(connection):
            self.lost_at = time.monotonic()
            with suppress(Exception):  # discarded, not given back to the pool
                connection.invalidate()
        self.close(connection)

    def take(self) -> tuple[Connection, float]:
        while True:
            try:
                connection, born = self.idle.pop()
            except IndexError:
                return self.engine.connect(), time.monotonic()
            if self.expired(connection, born):
                self.close(connection)
                continue
            return connection, born

    def expired(self, connection: Connection, born: float) -> bool:
        return (connection.closed or connection.invalidated or born <= self.lost_at
                or time.monotonic() - born > READ_CONNECTION_LIFETIME)

    def give_back(self, connection: Connection, born: float) -> None:
        if self.expired(connection, born):
            self.close(connection)
            return
        if connection.in_transaction():
            connection.rollback()
        if len(self.idle) < self.keep:
            self.idle.append((connection, born))
        else:
            self.close(connection)

    @staticmethod
    def close(connection: Connection) -> None:
        with suppress(DBAPIError):  # a broken connection has nothing to give back
            connection.close()

    def close_all(self) -> None:
        while self.idle:
            self.close(self.idle.pop()[0])


@dataclass(frozen=True)
class Database:
    """The engines of one database: a writer (transactions) and a reader (autocommit, so a read
    costs one round trip: no BEGIN, COMMIT or per-checkout resets; idle readers stay checked out)."""

    writer: Engine
    reader: Engine
    pool_size: int = 5
    limits: StatementLimits | None = None  # None: statements run unbounded (tools, migrations, loaders)
    kept: KeptReadConnections = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kept", KeptReadConnections(self.reader, self.pool_size))

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 5, echo: bool = False, synchronous_reads: bool = False,
                limits: StatementLimits | None = None) -> Database:
        """Engines for a database URL. On PostgreSQL the reader's own writes (a read's audit record, a kept
        $case-status answer) commit asynchronously unless `synchronous_reads`: PostgreSQL has them at once,
        whatever becomes of the server's processes, and its WAL writer puts them on disk within a fraction
        of a second instead of each read waiting for a disk flush. With `limits`, every statement of a
        unit of work (`transaction`) is bounded: reading sessions start at the search limit and writing
        ones at the write limit, so most units need no statement to set it."""
        writer = make_engine(url, pool_size=pool_size, echo=echo, statement_ms=limits and limits.write_ms)
        if writer.dialect.name == "sqlite":
            return cls(writer, writer.execution_options(reading=True), pool_size, limits)
        commits = "on" if synchronous_reads else "off"
        reader = create_engine(
            normalise_url(url), echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=3600,
            isolation_level="AUTOCOMMIT", pool_reset_on_return=None, pool_pre_ping=True, hide_parameters=True,
            query_cache_size=STATEMENT_CACHE,
            connect_args={**session_options(limits and limits.search_ms, f"-c synchronous_commit={commits}"),
                          "connect_timeout": CONNECT_TIMEOUT},
        )
        return cls(writer, reader, pool_size, limits)

    def statement_limit(self, *, writing: bool, operation: bool = False) -> int | None:
        """The milliseconds a statement of such a unit of work may run (None: unbounded)."""
        if self.limits is None:
            return None
        if operation:
            return self.limits.operation_ms
        return self.limits.write_ms if writing else self.limits.search_ms

    def dispose(self) -> None:
        self.kept.close_all()
        self.writer.dispose()
        self.reader.dispose()


@contextmanager
def transaction(database: Database, *, writing: bool, operation: bool = False) -> Iterator[Connection]:
    """For writes, one transaction committed on success and rolled back on any exception;
    for reads, statements in autocommit mode. Each statement is bounded by the database's limit for the
    kind of work (a search or read, a write, an `operation`). A connection lost while the transaction
    commits raises OutcomeUnknown: the commit may or may not have happened."""
    limit = database.statement_limit(writing=writing, operation=operation)
    if not writing:
        with database.kept.use() as connection:
            try:
                if limit is not None:
                    limit_statements(connection, limit, database.statement_limit(writing=False), writing=False)
                yield connection
            finally:
                clear_deadline(connection)
        return
    with database.writer.connect() as connection:
        connection = connection.execution_options(writing=True)
        try:
            with connection.begin() as unit:
                if limit is not None:
                    limit_statements(connection, limit, database.statement_limit(writing=True), writing=True)
                yield connection
                try:
                    unit.commit()
                except Exception as exc:
                    if connection_lost(exc):
                        raise OutcomeUnknown(str(exc)[:200]) from exc
                    raise
        finally:
            clear_deadline(connection)


def advisory_lock(connection: Connection, key: int) -> None:
    """Serialise writers on a key for the rest of the transaction (SQLite is serial already)."""
    if is_postgres(connection):
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def advisory_locks(connection: Connection, keys: list[int], shared: list[int] | None = None) -> None:
    """Take many advisory locks in one statement, in key order (so concurrent takers cannot deadlock):
    exclusive ones on `keys`, shared ones on `shared` (a key in both is taken exclusively)."""
    exclusive = set(keys)
    wanted = sorted(exclusive | set(shared or ()))
    if wanted and is_postgres(connection):
        connection.execute(
            text("SELECT count(CASE WHEN e THEN pg_advisory_xact_lock(k) ELSE pg_advisory_xact_lock_shared(k) END) "
                 "FROM (SELECT k, e FROM unnest(CAST(:keys AS bigint[]), CAST(:exclusive AS boolean[])) AS t(k, e) "
                 "ORDER BY k) AS ordered"),
            {"keys": wanted, "exclusive": [key in exclusive for key in wanted]},
        )
