"""The audit trail's tables: one durable row per request with its patients, and the auditor's queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, insert, select

from ..security.audit import AuditRecord
from .among import among
from .bulk import driver_query
from .db import is_postgres
from .schema import audit_events, audit_patients, idx_reference, resources

COLUMNS = ("recorded", "request_id", "client", "organization", "kind", "interaction", "action", "status",
           "resource_type", "resource_id", "query", "purpose", "alert", "detail")

NAMED_WRITE = (
    f"WITH a AS (INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "RETURNING pk) INSERT INTO audit_patients (patient, audit_pk) "
    "SELECT DISTINCT p, a.pk FROM a, unnest(CAST(? AS text[])) AS p"
)
"""The audit row and the people named in the record, in one statement."""


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
    """Writes audit records (in the request's own transaction for writes; at once for reads) and reads them."""

    compartment_keys: list[int]
    statement: str = ""

    def __post_init__(self) -> None:
        self.statement = pg_write(self.compartment_keys)

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


def outcome_clause(outcome: str) -> Any:
    status = audit_events.c.status
    if outcome == "0":
        return status < 400
    if outcome == "4":
        return and_(status >= 400, status < 500)
    return status >= 500
