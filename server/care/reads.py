"""Reading current resources in bulk with SQL through a repository's connection (no search per patient)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, and_, select

from ..fhir.searchparams import param_key
from ..store.among import among
from ..store.db import is_postgres
from ..store.schema import idx_reference, idx_token, resource_versions, resources

CHUNK = 500
PATIENT_PARAM = {
    "Encounter": "patient", "Condition": "patient", "Observation": "patient", "MedicationRequest": "patient",
    "EpisodeOfCare": "patient", "ServiceRequest": "patient", "RiskAssessment": "patient", "CarePlan": "patient",
    "CareTeam": "patient", "Flag": "patient", "Task": "patient",
}


def chunks(items: list[str], size: int = CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def bodies_statement(resource_type: str) -> Any:
    r, v = resources.c, resource_versions.c
    return (select(r.id, v.body)
            .join_from(resources, resource_versions, and_(v.pk == r.pk, v.version == r.version))
            .where(r.type == resource_type, r.deleted.is_(False)))


def token_filter(resource_type: str, code: str, values: Iterable[str] | None, system: str | None = None) -> Any:
    """Keys of resources with one of the values in a token parameter (any value of the system if None)."""
    t = idx_token.c
    statement = select(t.pk).where(t.sp == param_key(resource_type, code))
    if values is not None:
        statement = statement.where(t.code.in_(list(values)))
    if system is not None:
        statement = statement.where(t.system == system)
    return statement


def stream(connection: Connection, resource_type: str, *, patients: list[str] | None = None,
           ids: list[str] | None = None, tokens: list[tuple[str, list[str] | None, str | None]] | None = None,
           batch: int = 0, reach: Any = None) -> Iterator[tuple[str, str]]:
    """(id, body) of the current versions of a type: all of them, those of some patients, or some ids;
    `tokens` narrows to resources with a value in each of the (parameter, values, system) given. With
    `batch`, all rows stream through a server-side cursor (inside a transaction) `batch` rows at a time.
    With `reach` (a caller's), only the resources that caller reaches."""
    base = bodies_statement(resource_type)
    if reach is not None:
        base = base.where(reach.clause(resources, (resource_type,)))
    for code, values, system in tokens or ():
        base = base.where(resources.c.pk.in_(token_filter(resource_type, code, values, system)))
    if patients is None and ids is None:
        result = connection.execute(base.execution_options(yield_per=batch) if batch else base)
        for row in result:
            if row.body is not None:
                yield row.id, row.body
        return
    if ids is not None:
        for part in chunks(sorted(set(ids))):
            for row in connection.execute(base.where(among(resources.c.id, part, is_postgres(connection)))):
                if row.body is not None:
                    yield row.id, row.body
        return
    x = idx_reference.c
    key = param_key(resource_type, PATIENT_PARAM[resource_type])
    for part in chunks(sorted(set(patients or ()))):
        members = select(x.pk).where(x.sp == key, x.ttype == "Patient", among(x.tid, part, is_postgres(connection)))
        for row in connection.execute(base.where(resources.c.pk.in_(members))):
            if row.body is not None:
                yield row.id, row.body


def referencing(connection: Connection, resource_type: str, code: str, target_type: str,
                target_ids: list[str]) -> list[str]:
    """Ids of current resources of a type whose reference parameter points at one of the targets."""
    x = idx_reference.c
    found: list[str] = []
    for part in chunks(sorted(set(target_ids))):
        statement = (select(resources.c.id).join_from(idx_reference, resources, resources.c.pk == x.pk)
                     .where(x.sp == param_key(resource_type, code), x.ttype == target_type,
                            among(x.tid, part, is_postgres(connection)),
                            resources.c.type == resource_type, resources.c.deleted.is_(False)))
        found.extend(row.id for row in connection.execute(statement))
    return found


def with_token(connection: Connection, resource_type: str, code: str, values: list[str],
               system: str | None = None) -> list[str]:
    """Ids of current resources with one of the values in a token parameter."""
    statement = (select(resources.c.id)
                 .where(resources.c.pk.in_(token_filter(resource_type, code, values, system)),
                        resources.c.type == resource_type, resources.c.deleted.is_(False)))
    return [row.id for row in connection.execute(statement)]
