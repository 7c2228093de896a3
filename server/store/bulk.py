"""Driver-level statements for hot paths: bulk writes (COPY / executemany), lookups, key allocation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from .db import is_postgres


def insert_rows(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Append rows (tuples in `columns` order) to a table within the current transaction."""
    if not rows:
        return
    names = ", ".join(columns)
    if is_postgres(connection):
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", list(rows))


def driver_query(connection: Connection, sql: str, params: tuple[Any, ...]) -> Any:
    """Run a hot-path statement straight on the driver cursor (`?` placeholders), skipping
    SQLAlchemy's statement construction; returns the cursor."""
    raw = connection.connection.driver_connection
    if is_postgres(connection):
        return raw.execute(sql.replace("?", "%s"), params)  # type: ignore[union-attr]
    cursor = raw.cursor()  # type: ignore[union-attr]
    cursor.execute(sql, params)
    return cursor


def allocate_keys(connection: Connection, count: int) -> list[int]:
    """Reserve `count` new primary keys of the resources table."""
    if is_postgres(connection):
        result = connection.execute(
            text("SELECT nextval(pg_get_serial_sequence('resources', 'pk')) FROM generate_series(1, :n)"),
            {"n": count},
        )
        return [row[0] for row in result]
    # SQLite: the write transaction holds the database lock, so max(pk) cannot move under us.
    highest = connection.exec_driver_sql("SELECT coalesce(max(pk), 0) FROM resources").scalar_one()
    return list(range(highest + 1, highest + 1 + count))
