"""Database upkeep: planner statistics (and visibility maps) refreshed after and during bulk loads."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text

from .db import Database

log = logging.getLogger(__name__)
#: how long the upkeep waits for a table lock before giving up until the next check (it never queues
#: behind a long transaction holding a request's writes up)
UPKEEP_LOCK_WAIT = "2s"


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


def analyze_table(database: Database, table: str) -> None:
    """ANALYZE one table at once on PostgreSQL, after rows made in bulk outside the writes the statistics keeper
    counts (a holder's kept rows): the planner then sizes joins through them rightly. Never raises: the rows
    are committed and serve whatever the planner believes; an error is logged."""
    if database.writer.dialect.name != "postgresql":
        return
    try:
        with database.reader.connect() as connection:
            try:
                connection.exec_driver_sql(f"SET lock_timeout = '{UPKEEP_LOCK_WAIT}'")
                connection.exec_driver_sql("SET statement_timeout = 0")
                connection.exec_driver_sql(f'ANALYZE "{table}"')
            finally:  # a pooled connection goes back with the session's own limits
                connection.exec_driver_sql("RESET lock_timeout")
                connection.exec_driver_sql("RESET statement_timeout")
    except Exception as exc:
        log.warning("ANALYZE %s failed, left to the statistics upkeep: %s", table,
                    str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__)


#: tables of ours that hold more than twice the rows the planner believes (plus a floor) - a geometric
#: schedule, so a table growing from empty is analyzed a handful of times, not continually. (Row counts,
#: not n_mod_since_analyze: an ANALYZE of chosen columns updates the counts but not that counter.)
STALE_TABLES = """
SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND s.n_live_tup > :floor + 2 * greatest(c.reltuples, 0)
"""
#: the columns of a table left at the default statistics target: analyzing only these samples 30,000 rows
#: (not the 300,000 the parameter-key columns ask for), enough for row counts and common values while a
#: table grows; `sharedcare db analyze` and autovacuum gather the full statistics
DEFAULT_TARGET_COLUMNS = """
SELECT attname FROM pg_attribute
WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped AND attstattarget < 0
ORDER BY attnum
"""
#: pg_try_advisory_lock key: one process at a time refreshes statistics
ANALYZE_LOCK = 0x5C_A11A1
#: rows SQLite's ANALYZE samples per index while the keeper refreshes statistics (`PRAGMA analysis_limit`)
SQLITE_SAMPLE = 1000


class StatisticsKeeper:
    """Keeps the planner statistics current while tables grow from empty (a first load into a new database):
    on PostgreSQL instead of waiting for autovacuum (or forever, where it is off); on SQLite, which gathers
    none by itself (without them it took a sort's index for a scan: `Encounter?_sort=status` ran past its 10 s
    over 9,000 Encounters, 25 ms once analyzed). Writers report how many versions they committed; every
    `check_every` versions one process looks for tables that have doubled since they were last analyzed and
    ANALYZEs them. It runs after a write committed, so it never fails that write: an error is logged and the
    check runs again after the next commit."""

    def __init__(self, database: Database, check_every: int = 2000, floor: int = 1000) -> None:
        self.database = database
        self.enabled = database.writer.dialect.name in ("postgresql", "sqlite")
        self.check_every = check_every
        self.floor = floor
        self.since_check = 0
        self.lock = threading.Lock()

    def committed(self, versions: int) -> None:
        """Called after a write transaction committed `versions` resource versions."""
        if not self.enabled or versions <= 0:
            return
        with self.lock:
            self.since_check += versions
            if self.since_check < self.check_every:
                return
            self.since_check = 0
        try:
            self.refresh()
        except Exception as exc:  # the write is committed: its answer stands, the upkeep waits for the next
            log.warning("planner statistics refresh failed, retried after the next commit: %s",
                        str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__)
            with self.lock:
                self.since_check = max(self.since_check, self.check_every)

    def refresh(self) -> list[str]:
        """ANALYZE every stale table (unless another process is doing it); returns the tables analyzed."""
        if self.database.writer.dialect.name == "sqlite":
            return self.refresh_sqlite()
        analyzed: list[str] = []
        with self.database.reader.connect() as connection:
            if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ANALYZE_LOCK}).scalar():
                return analyzed
            try:
                connection.exec_driver_sql(f"SET lock_timeout = '{UPKEEP_LOCK_WAIT}'")
                connection.exec_driver_sql("SET statement_timeout = 0")  # ANALYZE of a large table takes its time
                stale = connection.execute(text(STALE_TABLES), {"floor": self.floor}).scalars().all()
                for table in stale:
                    columns = connection.execute(text(DEFAULT_TARGET_COLUMNS), {"table": table}).scalars().all()
                    listed = " (" + ", ".join(f'"{c}"' for c in columns) + ")" if columns else ""
                    connection.exec_driver_sql(f'ANALYZE "{table}"{listed}')
                    analyzed.append(table)
            finally:
                connection.exec_driver_sql("RESET lock_timeout")
                connection.exec_driver_sql("RESET statement_timeout")  # back to the session's own limit
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ANALYZE_LOCK})
        return analyzed

    def refresh_sqlite(self) -> list[str]:
        """SQLite: ANALYZE the tables whose highest rowid (their size, read off the end of their b-tree) is over
        twice the row count their statistics hold (none: never analyzed), sampling at most SQLITE_SAMPLE rows
        per index so it takes milliseconds however large they grow."""
        with self.database.writer.connect() as connection:
            tables = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND sql NOT LIKE '%WITHOUT ROWID%'").scalars().all()
            counted: dict[str, int] = {}
            if connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
                for table, stat in connection.exec_driver_sql("SELECT tbl, stat FROM sqlite_stat1"):
                    rows = int(str(stat).split()[0]) if stat else 0
                    counted[table] = max(counted.get(table, 0), rows)
            stale = [table for table in tables
                     if (connection.exec_driver_sql(f'SELECT max(rowid) FROM "{table}"').scalar() or 0)
                     > self.floor + 2 * counted.get(table, 0)]
            if stale:
                connection.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_SAMPLE}")
                for table in stale:
                    connection.exec_driver_sql(f'ANALYZE "{table}"')
                connection.commit()
        return stale
