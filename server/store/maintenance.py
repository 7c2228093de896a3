"""Database upkeep: refresh planner statistics (and visibility maps) after bulk loads."""

from __future__ import annotations

from sqlalchemy import text

from .db import Database


def analyze(database: Database) -> None:
    """VACUUM ANALYZE on PostgreSQL (needed when autovacuum is off or lags a bulk load); ANALYZE on SQLite."""
    engine = database.writer
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE)"))
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.exec_driver_sql("PRAGMA optimize")
