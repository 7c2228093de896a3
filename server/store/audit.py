"""The audit trail's tables: one durable row per request with its patients, and the auditor's queries."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ..security.audit import AuditRecord
from .among import among
from .auditspool import AuditSpool, spool_folder
from .bulk import driver_query, insert_rows
from .db import Database, connection_lost, is_postgres
from .schema import audit_events, audit_patients, audit_spools, idx_reference, resources

COLUMNS = ("recorded", "request_id", "client", "organization", "kind", "interaction", "action", "status",
           "resource_type", "resource_id", "query", "purpose", "alert", "detail")

NAMED_WRITE = (
    f"WITH a AS (INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "RETURNING pk) INSERT INTO audit_patients (patient, audit_pk) "
    "SELECT DISTINCT p, a.pk FROM a, unnest(CAST(? AS text[])) AS p"
)
"""The audit row and the people named in the record, in one statement."""

SHIPMENT_BYTES = 4 * 1024 * 1024  # at most this much of a spool goes into the trail per transaction


def pg_write(compartment_keys: list[int]) -> str:
    """One statement on PostgreSQL: the audit row and its patients, sent straight to the driver (the
    compartment keys, fixed for a process, are written into its text)."""
    keys = ", ".join(str(key) for key in compartment_keys)
    return (
        f"WITH a AS (INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
        "RETURNING pk), "
        "p AS (SELECT unnest(CAST(? AS text[])) AS id "
        "UNION SELECT x.tid FROM idx_reference x WHERE x.pk = ANY(CAST(? AS bigint[])) AND x.ttype = 'Patient' "
        f"AND x.sp IN ({keys}) "
        "UNION SELECT r.id FROM resources r WHERE r.pk = ANY(CAST(? AS bigint[])) AND r.type = 'Patient') "
        "INSERT INTO audit_patients (patient, audit_pk) SELECT p.id, a.pk FROM a, p"
    )


@dataclass
class AuditTrail:
    """Writes audit records (in the request's own transaction for writes; at once, or into the process's
    spool when there is one, for the rest) and reads them."""

    compartment_keys: list[int]
    statement: str = ""
    spool: AuditSpool | None = None

    def __post_init__(self) -> None:
        self.statement = pg_write(self.compartment_keys)

    def use_spool(self, root: str, database: Database, *, fsync: bool = False) -> None:
        """Keep the records of reads and refusals in a local spool per process under `root`, shipped into
        the trail in batches (see `AuditSpool`); start shipping, first the spools of processes gone."""
        folder = spool_folder(root, database.writer.url.render_as_string(hide_password=True))
        self.spool = AuditSpool(folder, lambda path: self.ship(database, path),
                                lambda name: self.forget(database, name), fsync=fsync)
        self.spool.start()

    def keep(self, database: Database, record: AuditRecord, connection: Connection | None = None,
             pks: list[int] | None = None) -> None:
        """Keep a record outside any write transaction (a read's, a refusal's, a token request's) before its
        answer leaves: appended to the spool, or else in one statement on `connection` (an autocommit
        reader) or in a transaction of its own."""
        if self.spool is None:
            if connection is not None:
                self.write(connection, record, pks or [])
                return
            self.write_own(database, record, pks or [])
            return
        patients = set(record.patients)
        if pks and connection is not None:
            patients |= self.patients_of_resources(connection, pks)
        entry = {name: getattr(record, name) for name in COLUMNS}
        entry["patients"] = sorted(patients)
        self.spool.append(orjson.dumps(entry) + b"\n")

    def write_own(self, database: Database, record: AuditRecord, pks: list[int]) -> None:
        """Store a record in a transaction of its own; once more when the pooled connection it took was one the
        database dropped (pooled connections are not pinged when taken)."""
        for attempt in range(2):
            try:
                with database.writer.begin() as own:
                    self.write(own, record, pks)
                return
            except Exception as exc:
                if attempt or not connection_lost(exc):
                    raise

    def ship_outstanding(self) -> None:
        """Put every spooled record, of any process, into the trail (before the trail is read)."""
        if self.spool is not None:
            self.spool.ship_all()

    def ship(self, database: Database, path: Path) -> int | None:
        """Move the records of a spool that are not in the trail yet into it, in one transaction that also
        moves the spool's shipped mark (its row locked first, so no record goes in twice); the new mark (the
        spool's bytes now in the trail), or None when nothing whole was left to move."""
        with database.writer.connect() as plain:
            connection = plain.execution_options(writing=True)  # SQLite: the write lock from the start
            with connection.begin() as transaction:
                shipped = claim_spool(connection, path.name)
                # read only under the lock: a spool removed meanwhile is not read again from its start
                data = read_from(path, shipped) if shipped is not None else None
                end = data.rfind(b"\n") + 1 if data is not None else 0  # whole records: a write may be under way
                if not end:
                    transaction.rollback()
                    return None
                entries = [orjson.loads(line) for line in data[:end].splitlines()]  # type: ignore[index]
                self.write_many(connection, entries)
                mark = shipped + end  # type: ignore[operator]
                connection.execute(update(audit_spools).where(audit_spools.c.name == path.name).values(shipped=mark))
                return mark

    @staticmethod
    def forget(database: Database, name: str) -> None:
        with database.writer.begin() as connection:
            connection.execute(delete(audit_spools).where(audit_spools.c.name == name))

    def write_many(self, connection: Connection, entries: list[dict[str, Any]]) -> None:
        """Store spooled records (their columns and `patients`), in their order."""
        if not is_postgres(connection):
            for entry in entries:
                record = AuditRecord(**{name: entry[name] for name in COLUMNS}, patients=set(entry["patients"]))
                self.write(connection, record, [])
            return
        pks = list(connection.execute(text("SELECT nextval(pg_get_serial_sequence('audit_events', 'pk')) "
                                           "FROM generate_series(1, :n)"), {"n": len(entries)}).scalars())
        columns_of = itemgetter(*COLUMNS)
        insert_rows(connection, "audit_events", ("pk", *COLUMNS),
                    [(pk, *columns_of(entry)) for pk, entry in zip(pks, entries, strict=True)])
        insert_rows(connection, "audit_patients", ("patient", "audit_pk"),
                    [(patient, pk) for pk, entry in zip(pks, entries, strict=True) for patient in entry["patients"]])

    def write(self, connection: Connection, record: AuditRecord, pks: list[int]) -> None:
        """Store one record and the patients it carried: those named, and those of the resources `pks`
        (Patients themselves, and the patients that compartment references name). One statement on
        PostgreSQL, so an autocommit read's audit row is durable when the statement returns."""
        values = {name: getattr(record, name) for name in COLUMNS}
        if is_postgres(connection):
            unique = sorted(set(pks))
            if unique:
                driver_query(connection, self.statement, (*values.values(), sorted(record.patients), unique, unique))
            else:  # a read: its people are named already
                driver_query(connection, NAMED_WRITE, (*values.values(), sorted(record.patients)))
            return
        pk = connection.execute(insert(audit_events).returning(audit_events.c.pk), values).scalar_one()
        patients = set(record.patients) | self.patients_of_resources(connection, pks)
        if patients:
            connection.execute(insert(audit_patients), [{"patient": p, "audit_pk": pk} for p in sorted(patients)])

    def patients_of_resources(self, connection: Connection, pks: list[int]) -> set[str]:
        """The patients resources are about: Patients themselves and those their compartment references name."""
        patients: set[str] = set()
        unique = sorted(set(pks))
        postgres = is_postgres(connection)
        ref = idx_reference.c
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            patients.update(connection.execute(select(ref.tid).where(
                among(ref.pk, chunk, postgres), ref.ttype == "Patient",
                ref.sp.in_(self.compartment_keys))).scalars())
            patients.update(connection.execute(select(resources.c.id).where(
                among(resources.c.pk, chunk, postgres), resources.c.type == "Patient")).scalars())
        return patients

    def patients_of(self, connection: Connection, pks: list[int]) -> dict[int, list[str]]:
        rows = connection.execute(select(audit_patients.c.audit_pk, audit_patients.c.patient)
                                  .where(among(audit_patients.c.audit_pk, pks, is_postgres(connection)))
                                  .order_by(audit_patients.c.patient))
        found: dict[int, list[str]] = {}
        for row in rows:
            found.setdefault(row.audit_pk, []).append(row.patient)
        return found

    def find(self, connection: Connection, *, patient: str | None = None, client: str | None = None,
             since: int | None = None, until: int | None = None, action: str | None = None,
             outcome: str | None = None, before: int | None = None, count: int = 50) -> list[Any]:
        """Audit rows newest first matching the filters (each optional); `before` continues a page."""
        e = audit_events.c
        statement = select(audit_events)
        if patient is not None:
            statement = statement.join(audit_patients, and_(audit_patients.c.audit_pk == e.pk,
                                                            audit_patients.c.patient == patient))
        if client is not None:
            statement = statement.where(e.client == client)
        if since is not None:
            statement = statement.where(e.recorded >= since)
        if until is not None:
            statement = statement.where(e.recorded <= until)
        if action is not None:
            statement = statement.where(e.action == action)
        if outcome is not None:
            statement = statement.where(outcome_clause(outcome))
        if before is not None:
            statement = statement.where(e.pk < before)
        return list(connection.execute(statement.order_by(e.pk.desc()).limit(count + 1)))

    def get(self, connection: Connection, pk: int) -> Any:
        return connection.execute(select(audit_events).where(audit_events.c.pk == pk)).first()


def read_from(path: Path, offset: int) -> bytes | None:
    """What a spool holds from `offset` on (at most SHIPMENT_BYTES), or None when it is gone."""
    try:
        with path.open("rb") as spool:
            spool.seek(offset)
            return spool.read(SHIPMENT_BYTES)
    except FileNotFoundError:
        return None


def claim_spool(connection: Connection, name: str) -> int | None:
    """Lock a spool's bookkeeping row (made at its first shipment) for this transaction; its shipped mark, or
    None when the row went as this ran (the spool was shipped whole and removed meanwhile)."""
    dialect = postgresql if is_postgres(connection) else sqlite
    connection.execute(dialect.insert(audit_spools).values(name=name, shipped=0).on_conflict_do_nothing())
    return connection.execute(select(audit_spools.c.shipped).where(audit_spools.c.name == name)
                              .with_for_update()).scalar_one_or_none()


def outcome_clause(outcome: str) -> Any:
    status = audit_events.c.status
    if outcome == "0":
        return status < 400
    if outcome == "4":
        return and_(status >= 400, status < 500)
    return status >= 500
