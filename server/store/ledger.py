"""The load ledger: per extract row, the digest it was last loaded with and what it wrote (in-process loads)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..fhir.searchparams import param_key
from .among import among
from .db import Database, transaction
from .schema import idx_reference, idx_token, load_ledger, resources

TOKEN_MAX = 255  # the width of indexed token values
CHUNK = 1000  # values per statement (SQLite's IN list stays well under its variable limit)


class LoadLedger:
    """Reads and records ledger rows, and the current versions a ledger entry is checked against."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.postgres = database.writer.dialect.name == "postgresql"

    def entries(self, stream: str) -> dict[str, tuple[str, str]]:
        """Every recorded row of a stream: key -> (digest, entry JSON)."""
        query = select(load_ledger.c.key, load_ledger.c.digest, load_ledger.c.entry).where(
            load_ledger.c.stream == stream)
        with transaction(self.database, writing=False) as connection:
            return {key: (digest, entry) for key, digest, entry in connection.execute(query)}

    def record(self, stream: str, rows: dict[str, tuple[str, str]]) -> None:
        """Insert or replace rows (key -> (digest, entry JSON)) of a stream in one transaction."""
        if not rows:
            return
        insert = postgres_insert if self.postgres else sqlite_insert
        statement = insert(load_ledger)
        statement = statement.on_conflict_do_update(
            index_elements=[load_ledger.c.stream, load_ledger.c.key],
            set_={"digest": statement.excluded.digest, "entry": statement.excluded.entry})
        values = [{"stream": stream, "key": key, "digest": digest, "entry": entry}
                  for key, (digest, entry) in sorted(rows.items())]
        with transaction(self.database, writing=True) as connection:
            for start in range(0, len(values), CHUNK):
                connection.execute(statement, values[start:start + CHUNK])  # one statement, many rows

    def forget(self, stream: str, keys: Iterable[str]) -> None:
        """Drop rows of a stream (their next load maps them in full)."""
        listed = sorted(set(keys))
        if not listed:
            return
        with transaction(self.database, writing=True) as connection:
            for start in range(0, len(listed), CHUNK):
                connection.execute(load_ledger.delete().where(
                    load_ledger.c.stream == stream, among(load_ledger.c.key, listed[start:start + CHUNK],
                                                          self.postgres)))

    def current_versions(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The current version of each (type, id) that exists and is not deleted."""
        by_type: dict[str, set[str]] = defaultdict(set)
        for kind, resource_id in wanted:
            by_type[kind].add(resource_id)
        found: dict[tuple[str, str], int] = {}
        with transaction(self.database, writing=False) as connection:
            for kind, ids in by_type.items():
                listed = sorted(ids)
                for start in range(0, len(listed), CHUNK):
                    query = select(resources.c.id, resources.c.version).where(
                        resources.c.type == kind, among(resources.c.id, listed[start:start + CHUNK], self.postgres),
                        resources.c.deleted.is_(False))
                    for resource_id, version in connection.execute(query):
                        found[(kind, resource_id)] = int(version)
        return found

    def holders(self, identities: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], set[str]]:
        """The live resources carrying each identifier: (type, system, value) -> ids (absent when none)."""
        grouped: dict[tuple[str, str], set[str]] = defaultdict(set)
        for kind, system, value in identities:
            grouped[(kind, system)].add(value)
        found: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        with transaction(self.database, writing=False) as connection:
            for (kind, system), values in grouped.items():
                listed = sorted(values)
                for start in range(0, len(listed), CHUNK):
                    query = select(resources.c.id, idx_token.c.code).join(
                        resources, resources.c.pk == idx_token.c.pk).where(
                        idx_token.c.sp == param_key(kind, "identifier"),
                        among(idx_token.c.code, listed[start:start + CHUNK], self.postgres),
                        idx_token.c.system == system, resources.c.deleted.is_(False))
                    for resource_id, value in connection.execute(query):
                        found[(kind, system, value)].add(resource_id)
        return dict(found)

    def linked(self, patient_ids: Iterable[str]) -> set[str]:
        """The Patients among these that carry a ``link`` (merged into another, or replacing one)."""
        listed = sorted(set(patient_ids))
        found: set[str] = set()
        with transaction(self.database, writing=False) as connection:
            for start in range(0, len(listed), CHUNK):
                query = select(resources.c.id).join(idx_reference, idx_reference.c.pk == resources.c.pk).where(
                    resources.c.type == "Patient", among(resources.c.id, listed[start:start + CHUNK], self.postgres),
                    idx_reference.c.sp == param_key("Patient", "link")).distinct()
                found.update(resource_id for (resource_id,) in connection.execute(query))
        return found

    def identified(self, resource_type: str, system: str) -> list[tuple[str, str]]:
        """(id, identifier value) of every live resource of a type carrying an identifier of ``system``: one
        index scan, where a FHIR search by system alone would page through the same rows once per page."""
        query = select(resources.c.id, idx_token.c.code).join(resources, resources.c.pk == idx_token.c.pk).where(
            idx_token.c.sp == param_key(resource_type, "identifier"), idx_token.c.system == system[:TOKEN_MAX],
            resources.c.deleted.is_(False))
        with transaction(self.database, writing=False) as connection:
            return [(resource_id, value) for resource_id, value in connection.execute(query)]
