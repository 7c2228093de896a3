"""The `sharedcare stratify` command: a whole-population run in this process, with progress."""

from __future__ import annotations

from datetime import date

from tqdm import tqdm

from ..config import Settings
from ..store.db import Database
from ..store.services import StoreServices
from .runs import RunSummary
from .service import install


def stratify(settings: Settings, as_of: date | None, methods: list[str], batch: int,
             progress: bool = True) -> RunSummary:
    """Stratify every patient under the chosen rule sets and measures (all by default)."""
    database = Database.connect(settings.database_url, pool_size=2)
    try:
        store = StoreServices.build(database, settings.base_url, settings.project_base_uri,
                                    settings.mandatory_profiles)
        care = install(store)
        assert care.runs is not None
        with tqdm(total=0, unit="patient", disable=not progress, desc="stratify") as bar:
            def report(done: int, total: int, _summary: RunSummary) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            return care.runs.run(as_of or care.today(), methods or None, batch, report)
    finally:
        database.dispose()
