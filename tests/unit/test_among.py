"""`among`: list membership as an IN list (SQLite) or one array parameter (PostgreSQL), same answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert, select

from server.store.among import among
from server.store.db import Database, is_postgres
from tests.conftest import create_database

metadata = MetaData()
probe = Table("among_probe", metadata, Column("pk", BigInteger, primary_key=True), Column("code", String(64)))


@pytest.fixture()
def database(tmp_path: Path):
    url, drop = create_database(tmp_path)
    database = Database.connect(url)
    with database.writer.begin() as connection:
        metadata.create_all(connection)
        connection.execute(insert(probe), [{"pk": n, "code": f"c{n}"} for n in range(1, 2001)])
    yield database
    database.dispose()
    drop()  # type: ignore[operator]


@pytest.mark.parametrize("wanted", [[], [7], [3, 5, 7], list(range(1, 1501))])
def test_keys_among_values(database: Database, wanted: list[int]) -> None:
    with database.reader.connect() as connection:
        postgres = is_postgres(connection)
        found = connection.execute(select(probe.c.pk).where(among(probe.c.pk, wanted, postgres))).scalars().all()
    assert sorted(found) == sorted(wanted)


def test_text_among_values_with_quotes_and_misses(database: Database) -> None:
    wanted = ["c1", "c2000", "c'3", "no such", 'c"4', "c5"]
    with database.reader.connect() as connection:
        postgres = is_postgres(connection)
        statement = select(probe.c.code).where(among(probe.c.code, wanted, postgres))
        assert sorted(connection.execute(statement).scalars()) == ["c1", "c2000", "c5"]
        if postgres:
            assert "ANY" in str(statement.compile(connection))
