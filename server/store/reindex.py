"""Rebuilding search indexes when SearchParameter definitions change: resumable, with progress."""

from __future__ import annotations

import orjson
from sqlalchemy import delete, func, insert, select, update
from tqdm import tqdm

from ..config import Settings
from .bulk import insert_rows
from .db import Database, transaction
from .indexer import COLUMNS
from .schema import INDEX_TABLES, case_status, reindex_state, resource_versions, resources
from .services import StoreServices

STATE_NAME = "search-indexes"


def run_reindex(settings: Settings, batch_size: int = 500, restart: bool = False, progress: bool = True) -> int:
    """Reindex every current resource after the last finished key; returns how many were done."""
    database = Database.connect(settings.database_url)
    services = StoreServices.build(database, settings.base_url)
    digest = services.registry.digest
    with transaction(database, writing=True) as connection:
        state = connection.execute(select(reindex_state).where(reindex_state.c.name == STATE_NAME)).first()
        if state is None or restart or state.definitions != digest or state.finished:
            connection.execute(delete(reindex_state).where(reindex_state.c.name == STATE_NAME))
            connection.execute(insert(reindex_state).values(name=STATE_NAME, definitions=digest, last_pk=0,
                                                            finished=False))
            last_pk = 0
        else:
            last_pk = state.last_pk
    with database.reader.connect() as connection:
        remaining = connection.execute(
            select(func.count()).select_from(resources)
            .where(resources.c.pk > last_pk, resources.c.deleted.is_(False))
        ).scalar_one()
    done = 0
    with tqdm(total=remaining, desc="reindex", unit="res", disable=not progress) as bar:
        while True:
            with transaction(database, writing=True) as connection:
                rows = connection.execute(
                    select(resources.c.pk, resource_versions.c.body)
                    .join(resource_versions, (resource_versions.c.pk == resources.c.pk)
                          & (resource_versions.c.version == resources.c.version))
                    .where(resources.c.pk > last_pk, resources.c.deleted.is_(False))
                    .order_by(resources.c.pk).limit(batch_size)
                ).all()
                if not rows:
                    connection.execute(update(reindex_state).where(reindex_state.c.name == STATE_NAME)
                                       .values(finished=True))
                    # kept $case-status answers were found through the old indexes: make them again
                    connection.execute(update(case_status).values(generation=case_status.c.generation + 1,
                                                                  body=None))
                    # so were the people each organisation holds: evaluate them again
                    services.holdings.evaluate_all(connection)
                    break
                pks = [row.pk for row in rows]
                for table in INDEX_TABLES.values():
                    connection.execute(delete(table).where(table.c.pk.in_(pks)))
                pending: dict[str, list[tuple]] = {}
                for row in rows:
                    for name, found in services.indexer.rows(orjson.loads(row.body)).items():
                        pending.setdefault(name, []).extend((row.pk, *item) for item in found)
                for name, found in pending.items():
                    insert_rows(connection, INDEX_TABLES[name].name, COLUMNS[name], found)
                last_pk = pks[-1]
                connection.execute(update(reindex_state).where(reindex_state.c.name == STATE_NAME)
                                   .values(last_pk=last_pk))
            done += len(rows)
            bar.update(len(rows))
    database.dispose()
    return done
