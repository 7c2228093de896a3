"""Work after a commit (the planner statistics upkeep) never changes a committed write's answer."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import backend
from tests.support import patient

pytestmark = pytest.mark.skipif(backend() != "postgresql", reason="the statistics upkeep runs on PostgreSQL")


def test_a_failing_statistics_refresh_leaves_the_write_created_and_runs_again_later(fresh_app, caplog) -> None:
    services = fresh_app.extensions["sharedcare"].services
    client = fresh_app.test_client()
    for _ in range(3):
        assert client.post("/fhir/Patient", json=patient()).status_code == 201
    admin = create_engine(services.database.writer.url, isolation_level="AUTOCOMMIT")
    stale = text("SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = current_schema() AND n_live_tup > 0 "
                 "AND last_analyze IS NULL AND last_autoanalyze IS NULL")
    with admin.connect() as watcher:
        deadline = time.monotonic() + 30  # the server's sessions report their row counts within seconds
        while watcher.execute(stale).scalar_one() == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert watcher.execute(stale).scalar_one() > 0
    services.statistics.check_every, services.statistics.floor = 1, 0  # check after every write
    locking = create_engine(services.database.writer.url)
    with locking.connect() as locker:  # ANALYZE waits for these locks; writes do not
        tables = locker.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        locker.execute(text("LOCK TABLE " + ", ".join(f'"{t}"' for t in tables) + " IN SHARE UPDATE EXCLUSIVE MODE"))
        with caplog.at_level(logging.WARNING, logger="server.store.maintenance"):
            created = client.post("/fhir/Patient", json=patient())
        locker.rollback()
    locking.dispose()
    assert created.status_code == 201, created.get_json()
    assert client.get(f"/fhir/Patient/{created.get_json()['id']}").status_code == 200
    assert any("statistics refresh failed" in record.getMessage() for record in caplog.records)
    assert client.post("/fhir/Patient", json=patient()).status_code == 201  # the next write's upkeep runs it
    with admin.connect() as watcher:
        analyzed = watcher.execute(text("SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                                        "AND last_analyze IS NOT NULL")).scalar_one()
    admin.dispose()
    assert analyzed > 0
