"""Kept read connections: reused across reads and threads, bounded, and dropped after a database error."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from server.store.db import Database, transaction
from tests.conftest import create_database


@pytest.fixture()
def database(tmp_path: Path):
    url, drop = create_database(tmp_path)
    database = Database.connect(url, pool_size=2)
    yield database
    database.dispose()
    drop()  # type: ignore[operator]


def read_one(database: Database) -> int:
    with transaction(database, writing=False) as connection:
        return int(connection.execute(text("SELECT 1")).scalar_one())


def test_reads_reuse_one_connection(database: Database) -> None:
    with transaction(database, writing=False) as first:
        first.execute(text("SELECT 1"))
    with transaction(database, writing=False) as second:
        assert second is first
    assert len(database.kept.idle) == 1


def test_a_thread_per_read_never_exhausts_the_pool(database: Database) -> None:
    # pool_size 2 allows 2 + 4 overflow connections: 50 short-lived threads must not pin one each
    answers: list[int] = []
    for _ in range(50):
        worker = threading.Thread(target=lambda: answers.append(read_one(database)))
        worker.start()
        worker.join(timeout=30)
    assert answers == [1] * 50
    assert len(database.kept.idle) <= 2


def test_nested_reads_get_different_connections(database: Database) -> None:
    with transaction(database, writing=False) as outer, transaction(database, writing=False) as inner:
        assert inner is not outer
        assert inner.execute(text("SELECT 2")).scalar_one() == 2
        assert outer.execute(text("SELECT 3")).scalar_one() == 3
    assert len(database.kept.idle) == 2


def test_a_database_error_drops_the_connection(database: Database) -> None:
    with pytest.raises(DBAPIError), transaction(database, writing=False) as failing:
        failing.execute(text("SELECT * FROM no_such_table"))
    assert failing.closed
    assert all(kept is not failing for kept, _born in database.kept.idle)
    assert read_one(database) == 1


def test_dispose_closes_idle_connections(database: Database) -> None:
    with transaction(database, writing=False) as connection:
        connection.execute(text("SELECT 1"))
    database.dispose()
    assert connection.closed
    assert not database.kept.idle
