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
from sqlalchemy.exc import DBAPIError


def normalise_url(url: str) -> str:
    """Pick the drivers this project uses (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and explicit BEGIN handling."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 60})
        configure_sqlite(engine)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=3600,
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
    `keep` stay idle, a connection is dropped after a database error or an hour, and all are closed on
    dispose."""

    def __init__(self, engine: Engine, keep: int) -> None:
        self.engine = engine
        self.keep = keep
        self.idle: deque[tuple[Connection, float]] = deque()  # append and pop are atomic

    @contextmanager
    def use(self) -> Iterator[Connection]:
        connection, born = self.take()
        try:
            yield connection
        except DBAPIError:
            self.close(connection)
            raise
        except BaseException:
            self.give_back(connection, born)
            raise
        self.give_back(connection, born)

    def take(self) -> tuple[Connection, float]:
        while True:
            try:
                connection, born = self.idle.pop()
            except IndexError:
                return self.engine.connect(), time.monotonic()
            if connection.invalidated or time.monotonic() - born > READ_CONNECTION_LIFETIME:
                self.close(connection)
                continue
            return connection, born

    def give_back(self, connection: Connection, born: float) -> None:
        if connection.closed or connection.invalidated:
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
    kept: KeptReadConnections = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kept", KeptReadConnections(self.reader, self.pool_size))

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 5, echo: bool = False, synchronous_reads: bool = False
                ) -> Database:
        """Engines for a database URL. On PostgreSQL the reader's own writes (a read's audit record, a kept
        $case-status answer) commit asynchronously unless `synchronous_reads`: PostgreSQL has them at once,
        whatever becomes of the server's processes, and its WAL writer puts them on disk within a fraction
        of a second instead of each read waiting for a disk flush."""
        writer = make_engine(url, pool_size=pool_size, echo=echo)
        if writer.dialect.name == "sqlite":
            return cls(writer, writer.execution_options(reading=True), pool_size)
        commits = "on" if synchronous_reads else "off"
        reader = create_engine(
            normalise_url(url), echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=3600,
            isolation_level="AUTOCOMMIT", pool_reset_on_return=None,
            connect_args={"options": f"-c synchronous_commit={commits}"},
        )
        return cls(writer, reader, pool_size)

    def dispose(self) -> None:
        self.kept.close_all()
        self.writer.dispose()
        self.reader.dispose()


@contextmanager
def transaction(database: Database, *, writing: bool) -> Iterator[Connection]:
    """For writes, one transaction committed on success and rolled back on any exception;
    for reads, statements in autocommit mode."""
    if not writing:
        with database.kept.use() as connection:
            yield connection
        return
    with database.writer.connect() as connection:
        connection = connection.execution_options(writing=True)
        with connection.begin():
            yield connection


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
