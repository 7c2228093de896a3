"""The statistics keeper ANALYZEs PostgreSQL tables as they grow from empty, once per doubling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from server.store.db import Database
from server.store.maintenance import StatisticsKeeper
from tests.conftest import backend, create_database


@pytest.fixture()
def database(tmp_path: Path):
    url, drop = create_database(tmp_path)
    database = Database.connect(url)
    yield database
    database.dispose()
    drop()  # type: ignore[operator]


def grow(database: Database, rows: int) -> None:
    """Insert rows into the probe table and wait until the statistics system has counted them."""
    with database.writer.connect() as connection:
        before = modified(database)
        connection.execute(text("INSERT INTO keeper_probe SELECT g FROM generate_series(1, :n) g"), {"n": rows})
        connection.commit()
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        connection.commit()
    deadline = time.monotonic() + 5
    while modified(database) < before + rows and time.monotonic() < deadline:
        time.sleep(0.05)


def modified(database: Database) -> int:
    with database.reader.connect() as connection:
        return int(connection.execute(text(
            "SELECT coalesce(max(n_mod_since_analyze), 0) FROM pg_stat_user_tables WHERE relname = 'keeper_probe'"
        )).scalar_one())


def analyze_count(database: Database) -> int:
    with database.reader.connect() as connection:
        return int(connection.execute(text(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'keeper_probe'")).scalar_one())


def sqlite_counted(database: Database) -> int | None:
    """The row count SQLite's statistics hold for the probe table (None: never analyzed)."""
    with database.reader.connect() as connection:
        if not connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
            return None
        stat = connection.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'keeper_probe'").scalar()
        return None if stat is None else int(stat.split()[0])


def test_sqlite_tables_are_analyzed_once_they_double(database: Database) -> None:
    """SQLite gathers no statistics by itself: the keeper ANALYZEs a table once it holds over twice the rows its
    statistics say (none at first)."""
    if backend() != "sqlite":
        pytest.skip("SQLite's statistics")
    keeper = StatisticsKeeper(database, check_every=10, floor=50)

    def grow(rows: int) -> None:
        with database.writer.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS keeper_probe (n integer)")
            for _ in range(rows):
                connection.exec_driver_sql("INSERT INTO keeper_probe (n) VALUES (1)")

    grow(200)
    keeper.committed(5)
    assert sqlite_counted(database) is None  # fewer versions than check_every: not even looked
    keeper.committed(5)
    assert sqlite_counted(database) == 200
    assert "keeper_probe" not in keeper.refresh()  # nothing changed since
    grow(100)
    assert "keeper_probe" not in keeper.refresh()  # grown by half: not yet doubled
    grow(200)
    assert "keeper_probe" in keeper.refresh()
    assert sqlite_counted(database) == 500


def test_tables_are_analyzed_once_they_double(database: Database) -> None:
    if backend() != "postgresql":
        pytest.skip("PostgreSQL's statistics")
    keeper = StatisticsKeeper(database, check_every=10, floor=50)
    with database.writer.begin() as connection:
        connection.execute(text("CREATE TABLE keeper_probe (n integer)"))
    grow(database, 200)
    keeper.committed(5)
    assert analyze_count(database) == 0  # fewer versions than check_every: not even looked
    keeper.committed(5)
    assert analyze_count(database) == 1
    assert "keeper_probe" not in keeper.refresh()  # nothing changed since
    grow(database, 100)
    assert "keeper_probe" not in keeper.refresh()  # grown by half: not yet doubled
    grow(database, 200)
    assert "keeper_probe" in keeper.refresh()
    assert analyze_count(database) == 2
