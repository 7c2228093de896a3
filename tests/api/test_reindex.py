"""The reindex command rebuilds search indexes, resumes after an interruption and reports progress."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import delete, func, select

from server.config import Settings
from server.store import reindex as reindex_module
from server.store.schema import idx_string, idx_token, reindex_state
from tests.support import FHIR_JSON, patient


def family_count(client, family: str) -> int:
    return client.get(f"/fhir/Patient?family={family}&_total=accurate&_count=0").get_json()["total"]


def test_reindex_rebuilds_and_resumes(fresh_app, monkeypatch):
    client = fresh_app.test_client()
    for index in range(7):
        body = patient(f"nhs-{index}", name=[{"family": f"Reindexed{index}"}])
        assert client.post("/fhir/Patient", data=orjson.dumps(body), content_type=FHIR_JSON).status_code == 201
    engine = fresh_app.extensions["sharedcare"].services.engine
    with engine.begin() as connection:
        connection.execute(delete(idx_string))
        connection.execute(delete(idx_token))
    assert family_count(client, "Reindexed") == 0
    settings = Settings.from_env({}, database_url=str(engine.url.render_as_string(hide_password=False)))

    calls = {"n": 0}
    real_insert = reindex_module.insert_rows

    def failing_insert(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("interrupted")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(reindex_module, "insert_rows", failing_insert)
    with pytest.raises(RuntimeError):
        reindex_module.run_reindex(settings, batch_size=2, progress=False)
    with engine.connect() as connection:
        state = connection.execute(select(reindex_state)).one()
    assert not state.finished and state.last_pk > 0
    partially = family_count(client, "Reindexed")
    assert 0 < partially < 7
    monkeypatch.setattr(reindex_module, "insert_rows", real_insert)
    done = reindex_module.run_reindex(settings, batch_size=2, progress=False)
    assert done == 7 - partially
    assert family_count(client, "Reindexed") == 7
    with engine.connect() as connection:
        assert connection.execute(select(reindex_state.c.finished)).scalar_one() is True
        assert connection.execute(select(func.count()).select_from(idx_token)).scalar_one() > 0
    again = reindex_module.run_reindex(settings, batch_size=100, progress=False)
    assert again == 7
