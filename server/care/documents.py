"""Precomputed $case-status answers: one row per patient, served as stored until a write makes it stale.

A row holds the answer, the day it was made for (when it depends on the date) and the rule book it was
made with, plus a generation. Every write the answer depends on bumps the generation and clears the answer
in the writer's own transaction: the patient, the resources linked to the patient (programme and service
episodes, flags, plans, care teams, risk assessments), their members (roles, practitioners and others
named by care teams and flags) and the practitioners of those roles. A lookup that finds no fresh answer
computes one and stores it only if the generation it started from is still current, so an answer made
from data older than a concurrent write is never kept. Writers of members and of the links to members
serialise on advisory locks (a member writer locks each member it writes, a link writer shares a lock on
each member it names; both share one lock for all members, which a bulk write of more than LOCK_LIMIT
takes alone and exclusively), so a member's change and a new link to it cannot both miss a patient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Connection, Select, String, bindparam, false, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..digests import tree_digest
from ..fhir.searchparams import param_key
from ..store.among import among
from ..store.db import advisory_locks, is_postgres, write_without_waiting
from ..store.indexer import parse_reference
from ..store.repository import Repository, StoredResource
from ..store.schema import case_status, idx_reference, idx_token, resource_versions, resources
from ..store.search.reach import CompiledRead
from .unitstate import PerUnit

if TYPE_CHECKING:
    from ..store.search.reach import Reach
    from .service import CareServices

Json = dict[str, Any]
LINKED = (("EpisodeOfCare", "patient"), ("Flag", "patient"), ("CarePlan", "patient"), ("CareTeam", "patient"),
          ("RiskAssessment", "patient"))
"""The resources an answer reads by their patient reference."""
MEMBERS = (("CareTeam", "participant"), ("Flag", "author"))
"""The references by which an answer reads the members of those resources."""
CHUNK = 500
LINKED_TYPES = frozenset(kind for kind, _code in LINKED)
# Types that care teams (participant.member) and flags (author) may name, and so appear in an answer.
MEMBER_TYPES = frozenset({"Practitioner", "PractitionerRole", "RelatedPerson", "Organization", "CareTeam",
                          "Device", "Patient"})
LINKED_KEYS = tuple(param_key(kind, code) for kind, code in LINKED)
MEMBER_KEYS = tuple(param_key(kind, code) for kind, code in MEMBERS)
ROLE_PRACTITIONER = param_key("PractitionerRole", "practitioner")
ALL_MEMBERS = param_key("$case-status", "members")
LOCK_LIMIT = 256


def lock_key(resource_type: str, resource_id: str) -> int:
    return param_key("$case-status", f"{resource_type}/{resource_id}")


def basis_of(care: CareServices) -> str:
    """A digest of what shapes an answer besides the data: the care package's code (the answer's format
    included), the rule books and terminology bundled with it, the rule book's methods and the base URI."""
    methods = "|".join(f"{m.code}@{m.version}" for m in care.book.methods)
    bundled = tree_digest(("server.care", "profiles/rulesets", "profiles/terminology"))
    text = f"{bundled}|{care.names.base}|{methods}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Found:
    """A patient matched by a lookup, with its stored answer if any (generation None: no row yet)."""

    patient_pk: int
    generation: int | None
    day: str | None
    basis: str | None
    body: str | None
    patient_id: str = ""
    objecting: bool = False

    def fresh(self, basis: str, today: str) -> bool:
        return self.body is not None and self.basis == basis and (self.day is None or self.day == today)


STORE_NEW = ("INSERT INTO case_status (patient_pk, generation, day, basis, body) VALUES (?, 0, ?, ?, ?) "
             "ON CONFLICT (patient_pk) DO NOTHING")
STORE_AGAIN = "UPDATE case_status SET day = ?, basis = ?, body = ? WHERE patient_pk = ? AND generation = ?"


def find_statement(by_identifier: bool, objecting: Callable[[Any], ColumnElement[bool]] | None) -> Select:
    """The patients a lookup matches, each with its stored answer, its id and whether its objection hides it
    from the caller (`objecting` of the patient's id; None: no objection hides anyone from the caller)."""
    row, stored = resources, case_status
    columns = (row.c.pk, stored.c.generation, stored.c.day, stored.c.basis, stored.c.body, row.c.id,
               (objecting(row.c.id) if objecting is not None else false()).label("objecting"))
    if by_identifier:
        token = idx_token
        return (select(*columns)
                .select_from(token.join(row, row.c.pk == token.c.pk).outerjoin(stored, stored.c.patient_pk == row.c.pk))
                .where(token.c.sp == param_key("Patient", "identifier"),
                       token.c.code == bindparam("value", value="", type_=String),
                       token.c.system == bindparam("system", value="", type_=String),
                       row.c.type == "Patient", row.c.deleted.is_(False)))
    return (select(*columns).select_from(row.outerjoin(stored, stored.c.patient_pk == row.c.pk))
            .where(row.c.type == "Patient", row.c.id == bindparam("reach_read_id", value="", type_=String),
                   row.c.deleted.is_(False)))


VARIABLE = ("reach_read_id", "value", "system")
"""The bound parameters of a lookup's statement: the patient's id, or the identifier's value and system."""


@lru_cache(maxsize=8)
def unrestricted_find(by_identifier: bool, dialect: Any) -> CompiledRead:
    """`find_statement` for a caller no objection hides anyone from, compiled once per database dialect."""
    return CompiledRead.compiled(find_statement(by_identifier, None), dialect, VARIABLE)


class StatusDocuments:
    """Finds and stores precomputed answers."""

    def __init__(self, care: CareServices) -> None:
        self.basis = basis_of(care)

    def find(self, connection: Connection, reach: Reach | None, *, patient_id: str | None = None,
             system: str | None = None, value: str | None = None) -> list[Found]:
        """The patients a lookup matches (one statement), each with its stored answer and whether the
        caller's reach hides it by an objection."""
        by_identifier = patient_id is None
        if reach is None:
            compiled = unrestricted_find(by_identifier, connection.dialect)
        else:
            compiled = reach.compiled_once(("case-status", by_identifier, reach.honour_objection),
                                           lambda: find_statement(by_identifier, reach.objecting_person),
                                           connection.dialect, VARIABLE)
        cursor = (compiled.run(connection, patient_id) if patient_id is not None
                  else compiled.run(connection, value=value, system=system))
        found = (Found(pk, generation, day, basis, body, ident, bool(objects))
                 for pk, generation, day, basis, body, ident, objects in cursor.fetchall())
        return list({row.patient_pk: row for row in found}.values())  # a patient may carry a number twice

    def store(self, connection: Connection, found: Found, answer: Json, body: str, today: str) -> bool:
        """Keep an answer, unless a write has bumped the generation since `found` was read (or is bumping it
        now: a lookup does not wait for a writer); whether it was kept."""
        day = today if depends_on_day(answer) else None
        if found.generation is None:
            return write_without_waiting(connection, STORE_NEW, (found.patient_pk, day, self.basis, body))
        return write_without_waiting(connection, STORE_AGAIN,
                                     (day, self.basis, body, found.patient_pk, found.generation))


def depends_on_day(answer: Json) -> bool:
    """An answer with a care plan names the next review and summarises the plan as of today."""
    return any(part.get("name") == "carePlan" for part in answer.get("parameter") or ())


def reference_parts(reference: Any) -> tuple[str, str] | None:
    """(type, id) of a reference as the indexer reads it: relative, absolute, versioned, or an id with `type`."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    kind, ident, _version = parse_reference(reference["reference"])
    if not kind and isinstance(reference.get("type"), str) and "/" not in ident:
        kind = reference["type"]
    ident = ident.rsplit("/", 1)[-1]
    return (kind, ident) if kind and ident else None


def patient_reference(resource: Json) -> str | None:
    """The id of the Patient a linked resource is about (`patient` or `subject`)."""
    for key in ("patient", "subject"):
        found = reference_parts(resource.get(key))
        if found is not None and found[0] == "Patient":
            return found[1]
    return None


def member_references(kind: str, resource: Json) -> list[tuple[str, str]]:
    """The members a written resource links into answers: care team members, flag authors, a role's
    practitioner."""
    if kind == "CareTeam":
        found = [reference_parts(p.get("member")) for p in resource.get("participant") or ()
                 if isinstance(p, dict)]
    elif kind == "Flag":
        found = [reference_parts(resource.get("author"))]
    elif kind == "PractitionerRole":
        found = [reference_parts(resource.get("practitioner"))]
    else:
        found = []
    return [ref for ref in found if ref is not None]


@dataclass
class Pending:
    """What one transaction wrote that answers depend on."""

    patients: set[str] = field(default_factory=set)
    previous: dict[tuple[str, str], int] = field(default_factory=dict)  # linked resource -> version before
    members: set[tuple[str, str]] = field(default_factory=set)
    links: set[tuple[str, str]] = field(default_factory=set)
    new_patients: set[str] = field(default_factory=set)  # members only if named before they existed

    def empty(self) -> bool:
        return not (self.patients or self.previous or self.members or self.links or self.new_patients)


class StatusInvalidation:
    """The WriteListener that bumps the generation of every patient whose answer a transaction changes."""

    def __init__(self) -> None:
        self.pending: PerUnit[Connection, Pending] = PerUnit(Pending)

    def written(self, repo: Repository, stored: StoredResource, resource: Json | None) -> None:
        kind = stored.type
        linked, member = kind in LINKED_TYPES, kind in MEMBER_TYPES
        if not (linked or member):
            return
        state = self.pending.of(repo.connection)  # keyed by transaction: the care package writes beside the caller
        if kind == "Patient":
            if stored.version == 1:  # no answer of their own yet; another's team may name them already
                state.new_patients.add(stored.id)
                return
            state.patients.add(stored.id)
        if linked:
            patient = patient_reference(resource) if resource is not None else None
            if patient is not None:
                state.patients.add(patient)
            if stored.version > 1:
                state.previous.setdefault((kind, stored.id), stored.version - 1)
        if member:
            state.members.add((kind, stored.id))
        if resource is not None:
            state.links.update(member_references(kind, resource))

    def before_commit(self, repo: Repository) -> None:
        state = self.pending.take(repo.connection)
        if state is None or state.empty():
            return
        repo.flush()
        connection = repo.connection
        bulk = len(state.members) > LOCK_LIMIT or len(state.links) > LOCK_LIMIT
        if bulk:  # one lock for all members
            advisory_locks(connection, [ALL_MEMBERS])
        elif state.members or state.links:
            advisory_locks(connection, [lock_key(*ref) for ref in state.members],
                           shared=[ALL_MEMBERS, *(lock_key(*ref) for ref in state.links)])
        members = set(state.members)
        roles = roles_of(connection, [i for kind, i in state.members if kind == "Practitioner"])
        if roles and not bulk:  # a team being linked to one of these roles now holds it shared
            advisory_locks(connection, [lock_key("PractitionerRole", role) for role in roles])
        members.update(("PractitionerRole", role) for role in roles)
        members.update(("Patient", patient) for patient in state.new_patients)
        patients = set(state.patients)
        patients.update(previous_patients(connection, state.previous))
        patients.update(patients_of_members(connection, members))
        bump(connection, patients)


def previous_patients(connection: Connection, previous: dict[tuple[str, str], int]) -> set[str]:
    """The patients the versions before this transaction's writes were about."""
    found: set[str] = set()
    r, v = resources.c, resource_versions.c
    keys = sorted((kind, resource_id, version) for (kind, resource_id), version in previous.items())
    for start in range(0, len(keys), CHUNK):
        part = keys[start:start + CHUNK]
        statement = (select(v.body).join_from(resources, resource_versions, v.pk == r.pk)
                     .where(tuple_(r.type, r.id, v.version).in_(part)))
        for (body,) in connection.execute(statement):
            if body is not None:
                patient = patient_reference(orjson.loads(body))
                if patient is not None:
                    found.add(patient)
    return found


def roles_of(connection: Connection, practitioners: list[str]) -> set[str]:
    """The PractitionerRoles of the practitioners (whose contact details an answer shows)."""
    postgres = is_postgres(connection)
    x = idx_reference.c
    found: set[str] = set()
    listed = sorted(practitioners)
    for start in range(0, len(listed), CHUNK):
        roles = (select(resources.c.id).join_from(idx_reference, resources, resources.c.pk == x.pk)
                 .where(x.sp == ROLE_PRACTITIONER, x.ttype == "Practitioner",
                        among(x.tid, listed[start:start + CHUNK], postgres)))
        found.update(connection.execute(roles).scalars())
    return found


def patients_of_members(connection: Connection, members: Iterable[tuple[str, str]]) -> set[str]:
    """The patients whose linked resources name one of the members."""
    by_type: dict[str, set[str]] = {}
    for kind, resource_id in members:
        by_type.setdefault(kind, set()).add(resource_id)
    postgres = is_postgres(connection)
    x, y = idx_reference.c, idx_reference.alias("y").c
    found: set[str] = set()
    for kind, ids in sorted(by_type.items()):
        listed = sorted(ids)
        for start in range(0, len(listed), CHUNK):
            holders = select(x.pk).where(x.sp.in_(MEMBER_KEYS), x.ttype == kind,
                                         among(x.tid, listed[start:start + CHUNK], postgres))
            statement = select(y.tid).distinct().where(y.pk.in_(holders), y.sp.in_(LINKED_KEYS),
                                                       y.ttype == "Patient")
            found.update(connection.execute(statement).scalars())
    return found


def bump(connection: Connection, patient_ids: Iterable[str]) -> None:
    """New generations (and no answer) for the patients' rows, creating rows that do not exist yet; rows
    are taken in key order, so that concurrent bumps cannot deadlock."""
    postgres = is_postgres(connection)
    listed = sorted(set(patient_ids))
    keys: list[int] = []
    for start in range(0, len(listed), CHUNK):
        keys.extend(connection.execute(select(resources.c.pk).where(
            resources.c.type == "Patient", among(resources.c.id, listed[start:start + CHUNK], postgres))).scalars())
    keys.sort()
    insert = postgres_insert if postgres else sqlite_insert
    for start in range(0, len(keys), CHUNK):
        rows = [{"patient_pk": key, "generation": 1, "basis": ""} for key in keys[start:start + CHUNK]]
        statement = insert(case_status).values(rows)
        connection.execute(statement.on_conflict_do_update(
            index_elements=[case_status.c.patient_pk],
            set_={"generation": case_status.c.generation + 1, "body": None}))
