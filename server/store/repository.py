"""The repository: the one write path and the reads, for one caller inside one database transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from ..fhir import jsontext
from ..fhir.dates import format_http_date, format_instant, now_us
from ..fhir.outcome import FhirError, Issue, bad_request, gone, not_found, precondition_failed
from ..fhir.text import plain_int
from ..security.context import Caller
from ..security.policy import authorize
from .among import among
from .bulk import allocate_keys, driver_query, insert_rows
from .db import advisory_lock, advisory_locks, is_postgres
from .indexer import COLUMNS
from .integrity import ReferenceLedger
from .schema import INDEX_TABLES, idx_reference, resource_versions, resources
from .search.criteria import Criteria

if TYPE_CHECKING:
    from .search.engine import SearchResult
    from .services import StoreServices

MAX_CONDITIONAL_DELETES = 100
CURRENT_SQL = (
    "SELECT r.version, r.updated, r.deleted, v.body, r.pk FROM resources r "
    "JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version WHERE r.type = ? AND r.id = ?"
)
RESOURCE_COLUMNS = ("pk", "type", "id", "version", "updated", "deleted")
VERSION_COLUMNS = ("pk", "version", "type", "id", "updated", "method", "body")


@dataclass(frozen=True)
class StoredResource:
    """A version of a resource as stored: the canonical JSON text and its version facts."""

    type: str
    id: str
    version: int
    updated: int
    deleted: bool
    body: str | None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def last_modified(self) -> str:
        return format_http_date(self.updated)

    @property
    def location(self) -> str:
        return f"{self.type}/{self.id}/_history/{self.version}"

    def json(self) -> dict[str, Any]:
        """The resource parsed (only where a caller needs to look inside it)."""
        if self.body is None:
            raise gone(f"{self.type}/{self.id} is deleted")
        return jsontext.loads(self.body)  # numbers as written, for a caller that writes the resource back


CurrentRow = tuple[int, int, int, bool, str | None]
"""(pk, version, updated, deleted, body) of a resource's current version."""


def current_rows() -> Any:
    """SELECT of current rows with their bodies, locking the resources rows (FOR UPDATE on PostgreSQL)."""
    return (
        select(resources.c.pk, resources.c.version, resources.c.updated, resources.c.deleted,
               resource_versions.c.body)
        .join(resource_versions, and_(resource_versions.c.pk == resources.c.pk,
                                      resource_versions.c.version == resources.c.version))
        .with_for_update(of=resources)
    )


class WriteListener(Protocol):
    """Something that reacts to writes inside the same transaction (e.g. re-stratifying a patient)."""

    def written(self, repo: Repository, stored: StoredResource, resource: dict[str, Any] | None) -> None:
        """Called for every version written (resource is None for a deletion)."""

    def before_commit(self, repo: Repository) -> None:
        """Called once when the unit of work ends, before its rows are flushed and committed."""


@dataclass(frozen=True)
class HistoryEntry:
    """One version in a history: what was stored and the interaction that stored it."""

    stored: StoredResource
    method: str


@dataclass(frozen=True)
class WriteResult:
    """What a write did: HTTP status, the resulting version, and a message for OperationOutcomes."""

    status: int
    stored: StoredResource
    message: str = ""


@dataclass
class PendingCreate:
    """A new resource whose rows are written at the next flush, when its key is allocated."""

    type: str
    id: str
    updated: int
    method: str
    body: str
    index: dict[str, list[tuple[Any, ...]]]


@dataclass
class PendingRows:
    """Rows waiting to be written in bulk: new resources, versions, index rows, keys to reindex."""

    creates: list[PendingCreate] = field(default_factory=list)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    index: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    stale: list[int] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.creates or self.versions or self.index or self.stale)


def parse_etag(value: str | None) -> int | None:
    """The version number in an ETag (`W/"3"`, `"3"` or `3`); raises 400 when unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if plain_int(text) is None:
        raise bad_request(f"Unreadable version tag {value!r}: expected W/\"<version>\"", code="value")
    return int(text)


class Repository:
    """Reads and writes resources for one caller within one database transaction."""

    def __init__(self, connection: Connection, caller: Caller, services: StoreServices) -> None:
        self.connection = connection
        self.postgres = is_postgres(connection)
        self.caller = caller
        self.services = services
        self.pending = PendingRows()
        self.locked: dict[tuple[str, str], CurrentRow | None] = {}
        self.versions_written = 0
        self.policy = services.policies.policy(caller.kind)
        self.reach = services.reach.reach(caller)
        self.written_pks: list[int] = []
        self.finishers: list[Callable[[], None]] = []  # run last, inside the unit's transaction
        self.touched: list[int] = []  # keys of the resources this unit wrote (their people are audited)
        self.patients: set[str] = set()  # patients of deleted resources (their index rows are gone)
        self.established: set[str] = set()  # people a write brought into the caller's reach
        self.held_people: dict[str, bool] = {}
        self.holders: list[str] | None = None  # the holders with kept rows, read once per unit (holdings.py)
        self.references = ReferenceLedger(services.integrity, services.base_url)

    # ----------------------------------------------------------------- reads

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        authorize(self.caller, "read", resource_type, self.policy, self.in_record(resource_type))
        self.flush()
        stored = self.fetch_current(resource_type, resource_id)
        if stored is None:
            if self.withheld(resource_type, resource_id):
                raise FhirError(403, [Issue("suppressed", f"{resource_type}/{resource_id} is withheld: the person "
                                                          "has objected to sharing. In an emergency, state "
                                                          "X-Purpose-Of-Use: ETREAT and X-Break-Glass-Reason "
                                                          "(audited as a security alert).")])
            raise not_found(f"{resource_type}/{resource_id} is not known")
        if stored.deleted:
            raise FhirError(410, [Issue("deleted", f"{resource_type}/{resource_id} was deleted")],
                            headers={"ETag": stored.etag, "Last-Modified": stored.last_modified})
        return stored

    def vread(self, resource_type: str, resource_id: str, version: str) -> StoredResource:
        authorize(self.caller, "vread", resource_type, self.policy, self.in_record(resource_type))
        self.flush()
        if plain_int(version) is None:
            raise not_found(f"{resource_type}/{resource_id} has no version {version!r}")
        row = self.connection.execute(
            self.reached(select(resource_versions.c.version, resource_versions.c.updated, resource_versions.c.body,
                                resource_versions.c.pk)
                         .join(resources, resources.c.pk == resource_versions.c.pk)
                         .where(resources.c.type == resource_type, resources.c.id == resource_id,
                                resource_versions.c.version == int(version)), (resource_type,))
        ).first()
        if row is None:
            raise not_found(f"{resource_type}/{resource_id} has no version {version}")
        stored = StoredResource(resource_type, resource_id, row.version, row.updated, row.body is None, row.body)
        if not self.version_held(row.body):
            raise not_found(f"{resource_type}/{resource_id} has no version {version}")
        self.note_read(resource_type, resource_id, row.body)
        if stored.deleted:
            raise gone(f"{resource_type}/{resource_id} version {version} is a deletion")
        return stored

    def reached(self, statement: Any, types: tuple[str, ...] | None = None, *, reading: bool = True) -> Any:
        """A statement over `resources` cut to the caller's reach (unchanged for a caller who reaches all)."""
        clause = None if self.reach is None else self.reach.clause(resources, types, reading=reading)
        return statement if clause is None else statement.where(clause)

    def in_record(self, resource_type: str) -> bool:
        """Whether a type belongs to a person's record (their compartment) rather than being shared."""
        return resource_type in self.services.reach.compartment

    def sees(self, resource_type: str, resource_id: str) -> bool:
        """Whether the caller reaches a resource as it stands (always, for a caller who reaches all)."""
        if self.reach is None:
            return True
        self.flush()
        found = self.connection.execute(self.reached(
            select(resources.c.pk).where(resources.c.type == resource_type, resources.c.id == resource_id),
            (resource_type,), reading=False)).first()
        return found is not None

    def withheld(self, resource_type: str, resource_id: str) -> bool:
        """Whether only a standing objection hides a resource from a caller who may break the glass."""
        if self.reach is None or not self.reach.may_break_glass:
            return False
        opened = self.reach.without_objection()
        found = self.connection.execute(
            select(resources.c.pk).where(resources.c.type == resource_type, resources.c.id == resource_id,
                                         opened.clause(resources, (resource_type,)))).first()
        return found is not None

    def patients_of(self, pk: int, resource_type: str, resource_id: str) -> set[str]:
        """The patients a current resource is about: itself, or those its compartment references name."""
        if resource_type == "Patient":
            return {resource_id}
        self.flush()
        ref = idx_reference.c
        return set(self.connection.execute(select(ref.tid).where(
            ref.pk == pk, ref.ttype == "Patient", ref.sp.in_(self.services.audit.compartment_keys))).scalars())

    def check_people(self, resource_type: str, resource: dict[str, Any]) -> None:
        """Every person a write names must already be held by the caller's organisation, unless the write is
        of a type through which its policy comes to hold people (an admission, a social care service, a
        registration): then it is let through and the people it brings in are noted, for the audit record
        to raise as a security alert. So no write puts data into a record the caller does not reach."""
        if self.reach is None:
            return
        named = patient_references(resource)
        outside = sorted(p for p in named if not self.holds(p))
        if not outside:
            return
        if resource_type in self.policy.relationship_types:
            self.established.update(outside)
            return
        raise FhirError(403, [Issue("forbidden", f"The {resource_type} names Patient/{outside[0]}, whose record "
                                                 "this client does not reach")])

    def holds(self, patient_id: str) -> bool:
        """Whether the caller's organisation holds a person (its relationships; a standing objection hides)."""
        assert self.reach is not None
        return self.connection.execute(self.reach.holding(patient_id)).first() is not None

    def check_written(self) -> None:
        """Refuse (403) when a write left a resource outside the caller's reach: no write may move a
        resource into a compartment the caller cannot reach, or create one there."""
        self.flush()
        if self.reach is None or not self.written_pks:
            self.written_pks = []
            return
        written = sorted(set(self.written_pks))
        self.written_pks = []
        reached: set[int] = set()
        for start in range(0, len(written), 500):
            chunk = written[start:start + 500]
            reached.update(self.connection.execute(self.reached(
                select(resources.c.pk).where(among(resources.c.pk, chunk, self.postgres)), reading=False)).scalars())
        outside = [pk for pk in written if pk not in reached]
        if outside:
            row = self.connection.execute(
                select(resources.c.type, resources.c.id, resources.c.deleted).where(resources.c.pk == outside[0])
            ).one()
            if not row.deleted:
                raise FhirError(403, [Issue("forbidden", f"The write would leave {row.type}/{row.id} outside the "
                                                         "records this client may reach")])

    def fetch_current(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """The current version of a resource the caller reaches (None when absent or out of reach)."""
        if self.reach is None:
            row = driver_query(self.connection, CURRENT_SQL, (resource_type, resource_id)).fetchone()
        else:
            compiled = self.reach.read_statement(resource_type, self.connection.dialect)
            row = compiled.run(self.connection, resource_id).fetchone()
        if row is None:
            return None
        version, updated, deleted, body, _pk = row
        self.note_read(resource_type, resource_id, body)
        return StoredResource(resource_type, resource_id, version, updated, bool(deleted), body)

    def fetch_many(self, pks: list[int], types: tuple[str, ...] | None = None) -> dict[int, StoredResource]:
        """Current versions of resources by primary key (deleted ones left out; `types`, when the keys are known
        to be of those types, narrows the reach's check to them)."""
        self.flush()
        found: dict[int, StoredResource] = {}
        for start in range(0, len(pks), 500):
            chunk = pks[start:start + 500]
            rows = self.connection.execute(self.reached(
                select(resources.c.pk, resources.c.type, resources.c.id, resources.c.version,
                       resources.c.updated, resource_versions.c.body)
                .join(resource_versions, and_(resource_versions.c.pk == resources.c.pk,
                                              resource_versions.c.version == resources.c.version))
                .where(among(resources.c.pk, chunk, self.postgres), resources.c.deleted.is_(False)), types
            ))
            for row in rows:
                found[row.pk] = StoredResource(row.type, row.id, row.version, row.updated, False, row.body)
                self.note_read(row.type, row.id, row.body)
        return found

    def search(self, resource_type: str | None, params: list[tuple[str, str]], **options: Any) -> SearchResult:
        """Run a search (type-level, or system-level when resource_type is None)."""
        for type_name in [resource_type] if resource_type else []:
            authorize(self.caller, "search", type_name, self.policy, self.in_record(type_name))
        self.flush()
        return self.services.search.search(self, resource_type, params, **options)

    def matching_ids(self, resource_type: str, searches: list[list[tuple[str, str]]]) -> list[set[str]]:
        """The ids each search of `resource_type` matches (criteria only), authorised as a search."""
        authorize(self.caller, "search", resource_type, self.policy, self.in_record(resource_type))
        self.flush()
        return self.services.search.matching_ids(self, resource_type, searches)

    def resolve_conditions(self, conditions: list[Criteria]) -> dict[Criteria, list[tuple[int, str]]]:
        """Lock and resolve many conditional criteria at once (a transaction's conditional entries).

        Identifier-style criteria are looked up together; the answer leaves out any other form."""
        self.flush()
        advisory_locks(self.connection, [criteria.lock_key for criteria in conditions])
        return self.services.search.match_identifiers(self, conditions)

    def criteria(self, resource_type: str, query: str | Criteria, what: str,
                 expression: str | None = None) -> Criteria:
        """A criterion in its canonical form (400 when its encoding is broken or it names nothing)."""
        if isinstance(query, Criteria):
            return query
        return self.services.search.criteria(resource_type, query, what, expression)

    def locked_matches(self, resource_type: str, query: str | Criteria, what: str
                       ) -> tuple[Criteria, list[tuple[int, str]]]:
        """A conditional write's criteria in canonical form and what they match, under the criteria's
        advisory lock: every spelling of one criterion, in any process and any kind of conditional
        write, waits for the others (PostgreSQL; SQLite has one writer at a time)."""
        criteria = self.criteria(resource_type, query, what)
        advisory_lock(self.connection, criteria.lock_key)
        return criteria, self.find(resource_type, criteria, what=what)

    def find(self, resource_type: str, query: str | Criteria, *, what: str) -> list[tuple[int, str]]:
        """Resolve conditional criteria (`identifier=x|y`) to (pk, id) pairs of current resources."""
        criteria = self.criteria(resource_type, query, what)
        self.flush()
        return self.services.search.match_criteria(self, criteria, what=what)

    def history(self, resource_type: str | None, resource_id: str | None, *, since: int | None = None,
                at: tuple[int, int] | None = None, count: int = 50, offset: int = 0,
                snapshot: int | None = None) -> tuple[list[HistoryEntry], bool, int | None]:
        """Versions newest first, for an instance, a type or the whole system; whether more follow; and the
        total when it is exact and cheap: a page that holds everything, or a count over the versions index
        at instance level, and at type level for a caller who reaches every resource (None otherwise)."""
        level = "history-instance" if resource_id is not None else "history-type" if resource_type else "history-system"
        if resource_type is not None:
            authorize(self.caller, level, resource_type, self.policy, self.in_record(resource_type))
        elif not self.caller.allows("s", "*") and self.reach is None:
            raise FhirError(403, [Issue("forbidden", "System history needs search on every type (system/*.s)")])
        self.flush()
        v = resource_versions.c
        statement = select(v.pk, v.version, v.type, v.id, v.updated, v.method, v.body)
        if self.reach is not None:
            statement = statement.join(resources, resources.c.pk == v.pk).where(
                self.reach.clause(resources, (resource_type,) if resource_type else None))
        if resource_id is not None:
            pk = self.connection.execute(self.reached(
                select(resources.c.pk).where(resources.c.type == resource_type, resources.c.id == resource_id),
                (resource_type,))
            ).scalar()
            if pk is None:
                raise not_found(f"{resource_type}/{resource_id} is not known")
            statement = statement.where(v.pk == pk)
        elif resource_type is not None:
            statement = statement.where(v.type == resource_type)
        if since is not None:
            statement = statement.where(v.updated >= since)
        if snapshot is not None:
            statement = statement.where(v.updated <= snapshot)
        if at is not None:
            later = resource_versions.alias("later")
            superseded = select(later.c.pk).where(
                later.c.pk == v.pk, later.c.version == v.version + 1, later.c.updated <= at[0])
            statement = statement.where(v.updated <= at[1], ~superseded.exists())
        ordered = statement.order_by(v.updated.desc(), v.pk.desc(), v.version.desc())
        rows = self.connection.execute(ordered.limit(count + 1).offset(offset)).all()
        shown = [r for r in rows[:count] if self.version_held(r.body)]
        entries = [HistoryEntry(StoredResource(r.type, r.id, r.version, r.updated, r.body is None, r.body), r.method)
                   for r in shown]
        for r in shown:  # an old version may name people the current one does not
            self.note_read(r.type, r.id, r.body)
        more = len(rows) > count
        total = None
        if offset == 0 and not more:
            total = len(shown)
        elif (resource_id is not None or (resource_type is not None and self.reach is None)) \
                and (self.reach is None or self.policy.whole_record):  # no version is left out per row
            total = self.connection.execute(statement.with_only_columns(func.count()).order_by(None)).scalar_one()
        return entries, more, total

    def note_read(self, resource_type: str, resource_id: str, body: str | None) -> None:
        """Remember the people a resource read is about, for the audit record (read off its stored text)."""
        if resource_type == "Patient":
            self.patients.add(resource_id)
        if body is not None and '"Patient/' in body:
            self.patients.update(patient_ids_in(body))

    def version_held(self, body: str | None) -> bool:
        """Whether every person an older version names is one the caller holds now: the reach is judged on
        the current version, so a version from before a resource moved into reach is not shown."""
        if self.reach is None or body is None or self.policy.whole_record:
            return True
        return all(self.holds_cached(patient) for patient in patient_ids_in(body))

    def holds_cached(self, patient_id: str) -> bool:
        if patient_id not in self.held_people:
            self.held_people[patient_id] = self.holds(patient_id)
        return self.held_people[patient_id]

    # ---------------------------------------------------------------- writes

    def create(self, resource: dict[str, Any], *, resource_type: str | None = None,
               if_none_exist: str | None = None, assigned_id: str | None = None) -> WriteResult:
        """Create with a server-assigned id (or `assigned_id` from a transaction); honours If-None-Exist."""
        resource_type = self.services.validator.validate(resource, resource_type)
        authorize(self.caller, "create", resource_type, self.policy, self.in_record(resource_type))
        if if_none_exist is not None:
            existing = self.conditional_match(resource_type, if_none_exist, "If-None-Exist")
            if existing is not None:
                return WriteResult(200, existing, "A matching resource already exists; nothing created")
        new_id = assigned_id or str(uuid.uuid4())
        self.check_people(resource_type, resource)
        stored = self.queue_create(resource_type, new_id, resource, "POST")
        return WriteResult(201, stored, f"Created {resource_type}/{new_id}")

    def update(self, resource_type: str, resource_id: str, resource: dict[str, Any], *,
               if_match: str | None = None, method: str = "PUT", new: bool = False) -> WriteResult:
        """Update (or create with the client's id); a version only when the content changes.

        Content equal to the current version is answered at once: it was validated when stored.
        `new` says the id was made up by this transaction for a conditional update that matched
        nothing, so it cannot exist yet."""
        self.services.validator.resource_type_of(resource, resource_type)
        if resource.get("id") != resource_id:
            raise bad_request(
                f"The id in the body ({resource.get('id')!r}) must equal the id in the URL ({resource_id!r})",
                f"{resource_type}.id",
            )
        authorize(self.caller, "update", resource_type, self.policy, self.in_record(resource_type))
        expected = parse_etag(if_match)
        if new and expected is None:
            self.services.validator.validate(resource, resource_type)
            self.check_people(resource_type, resource)
            stored = self.queue_create(resource_type, resource_id, resource, method)
            return WriteResult(201, stored, f"Created {resource_type}/{resource_id}")
        current = self.lock_current(resource_type, resource_id)
        if self.reach is not None and (current is None or not self.sees(resource_type, resource_id)):
            # the same answer whether the id is absent or out of reach: nothing tells them apart
            raise FhirError(403, [Issue("forbidden", f"{resource_type}/{resource_id} is not a resource this client "
                                                     "may update; new resources are created with POST")])
        self.check_people(resource_type, resource)
        if current is not None and expected is not None and expected != current[1]:
            raise precondition_failed(
                f"Version conflict on {resource_type}/{resource_id}: If-Match is {expected}, current is {current[1]}")
        if current is not None and not current[3] and current[4] is not None and same_content(current[4], resource):
            stored = StoredResource(resource_type, resource_id, current[1], current[2], False, current[4])
            return WriteResult(200, stored, "No change: the content equals the current version")
        self.services.validator.validate(resource, resource_type)
        if current is None:
            if expected is not None:
                raise precondition_failed(f"{resource_type}/{resource_id} does not exist; If-Match cannot hold")
            try:
                with self.connection.begin_nested():
                    stored = self.insert_new(resource_type, resource_id, resource, method)
            except Exception as exc:
                if not is_unique_violation(exc):
                    raise
                current = self.lock_current(resource_type, resource_id)
                if current is None:
                    raise
            else:
                return WriteResult(201, stored, f"Created {resource_type}/{resource_id}")
        pk, version, updated, deleted, _body = current
        if expected is not None and expected != version:
            raise precondition_failed(
                f"Version conflict on {resource_type}/{resource_id}: If-Match is {expected}, current is {version}")
        stored = self.write_version(pk, resource_type, resource_id, resource, version + 1, updated, method)
        return WriteResult(201 if deleted else 200, stored,
                           f"Updated {resource_type}/{resource_id} to version {stored.version}")

    def conditional_update(self, resource_type: str, query: str | Criteria, resource: dict[str, Any], *,
                           if_match: str | None = None) -> WriteResult:
        self.services.validator.resource_type_of(resource, resource_type)
        criteria, matches = self.locked_matches(resource_type, query, "Conditional update")
        if len(matches) > 1:
            raise precondition_failed(f"Conditional update matched {len(matches)} resources: {criteria}")
        if not matches:
            new_id = resource.get("id") or str(uuid.uuid4())
            resource = {**resource, "id": new_id}
            return self.update(resource_type, new_id, resource, if_match=if_match)
        found_id = matches[0][1]
        if resource.get("id") not in (None, found_id):
            raise bad_request(
                f"The body id {resource.get('id')!r} differs from the matched resource {resource_type}/{found_id}",
                f"{resource_type}.id")
        return self.update(resource_type, found_id, {**resource, "id": found_id}, if_match=if_match)

    def patch(self, resource_type: str, resource_id: str, apply: Callable[[dict[str, Any]], dict[str, Any]],
              *, if_match: str | None = None) -> WriteResult:
        """Apply a patch function to the current version and store the result as an update."""
        authorize(self.caller, "update", resource_type, self.policy, self.in_record(resource_type))
        current = self.lock_current(resource_type, resource_id)
        if current is None or not self.sees(resource_type, resource_id):
            raise not_found(f"{resource_type}/{resource_id} is not known")
        if current[3]:
            raise gone(f"{resource_type}/{resource_id} was deleted")
        expected = parse_etag(if_match)
        if expected is not None and expected != current[1]:
            raise precondition_failed(
                f"Version conflict on {resource_type}/{resource_id}: If-Match is {expected}, current is {current[1]}")
        patched = apply(jsontext.loads(current[4]))
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type:
            raise FhirError(422, [Issue("processing", "The patch changed the resource type or removed it")])
        if patched.get("id") != resource_id:
            raise FhirError(422, [Issue("processing", "The patch may not change the resource id")])
        return self.update(resource_type, resource_id, patched, method="PATCH")

    def delete(self, resource_type: str, resource_id: str, *, if_match: str | None = None) -> WriteResult:
        authorize(self.caller, "delete", resource_type, self.policy, self.in_record(resource_type))
        current = self.lock_current(resource_type, resource_id)
        if current is not None and not self.sees(resource_type, resource_id):
            current = None  # out of reach: exactly as if absent
        if current is None:
            if if_match is not None:
                raise precondition_failed(f"{resource_type}/{resource_id} does not exist; If-Match cannot hold")
            empty = StoredResource(resource_type, resource_id, 0, now_us(), True, None)
            return WriteResult(204, empty, f"{resource_type}/{resource_id} does not exist; nothing to delete")
        pk, version, updated, deleted, _body = current
        expected = parse_etag(if_match)
        if expected is not None and expected != version:
            raise precondition_failed(
                f"Version conflict on {resource_type}/{resource_id}: If-Match is {expected}, current is {version}")
        if deleted:
            stored = StoredResource(resource_type, resource_id, version, updated, True, None)
            return WriteResult(204, stored, f"{resource_type}/{resource_id} was already deleted")
        self.patients.update(self.patients_of(pk, resource_type, resource_id))
        stored = self.write_version(pk, resource_type, resource_id, None, version + 1, updated, "DELETE")
        return WriteResult(204, stored, f"Deleted {resource_type}/{resource_id}")

    def conditional_delete(self, resource_type: str, query: str | Criteria) -> list[WriteResult]:
        authorize(self.caller, "delete", resource_type, self.policy, self.in_record(resource_type))
        _criteria, matches = self.locked_matches(resource_type, query, "Conditional delete")
        if len(matches) > MAX_CONDITIONAL_DELETES:
            raise precondition_failed(
                f"Conditional delete matched {len(matches)} resources; at most {MAX_CONDITIONAL_DELETES} at once")
        return [self.delete(resource_type, found_id) for _pk, found_id in matches]

    # -------------------------------------------------------------- internals

    def conditional_match(self, resource_type: str, query: str | Criteria, what: str) -> StoredResource | None:
        """The one resource a conditional create's criteria match, under their lock (None for none)."""
        criteria, matches = self.locked_matches(resource_type, query, what)
        if len(matches) > 1:
            raise precondition_failed(f"{what} matched {len(matches)} resources: {criteria}")
        if matches:
            return self.fetch_current(resource_type, matches[0][1])
        return None

    def lock_current(self, resource_type: str, resource_id: str) -> CurrentRow | None:
        """The current row and body, locked for the rest of the transaction (PostgreSQL; SQLite is serial)."""
        self.flush()
        key = (resource_type, resource_id)
        if key in self.locked:
            return self.locked.pop(key)
        row = self.connection.execute(
            current_rows().where(resources.c.type == resource_type, resources.c.id == resource_id)
        ).first()
        return None if row is None else (row.pk, row.version, row.updated, row.deleted, row.body)

    def prefetch_current(self, keys: list[tuple[str, str]]) -> None:
        """Lock and read the current rows of many resources at once (a transaction about to update them)."""
        self.flush()
        ids_by_type: dict[str, list[str]] = {}
        for resource_type, resource_id in sorted(set(keys) - set(self.locked)):
            ids_by_type.setdefault(resource_type, []).append(resource_id)
        for resource_type, ids in ids_by_type.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found = {
                    row.id: (row.pk, row.version, row.updated, row.deleted, row.body)
                    for row in self.connection.execute(
                        current_rows().add_columns(resources.c.id)
                        .where(resources.c.type == resource_type, among(resources.c.id, chunk, self.postgres))
                        .order_by(resources.c.pk))
                }
                for resource_id in chunk:
                    self.locked[(resource_type, resource_id)] = found.get(resource_id)

    def canonical(self, resource_type: str, resource_id: str, resource: dict[str, Any],
                  version: int, updated: int) -> str:
        """The stored form: server-set id, meta.versionId and meta.lastUpdated, compact JSON."""
        meta = resource.get("meta")
        new_meta: dict[str, Any] = {"versionId": str(version), "lastUpdated": format_instant(updated)}
        if isinstance(meta, dict):
            new_meta.update((k, v) for k, v in meta.items() if k not in ("versionId", "lastUpdated"))
        body: dict[str, Any] = {"resourceType": resource_type, "id": resource_id, "meta": new_meta}
        body.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
        return jsontext.dumps(body).decode()

    def queue_create(self, resource_type: str, resource_id: str, resource: dict[str, Any],
                     method: str) -> StoredResource:
        """Create a resource whose id nobody else can hold (server-assigned): rows go out at flush."""
        self.locked.pop((resource_type, resource_id), None)
        updated = now_us()
        body = self.canonical(resource_type, resource_id, resource, 1, updated)
        index = self.services.indexer.rows({**resource, "id": resource_id})
        self.pending.creates.append(PendingCreate(resource_type, resource_id, updated, method, body, index))
        stored = StoredResource(resource_type, resource_id, 1, updated, False, body)
        self.notify(stored, resource)
        return stored

    def insert_new(self, resource_type: str, resource_id: str, resource: dict[str, Any], method: str) -> StoredResource:
        """Create with a client-chosen id: the row is inserted now so a concurrent create conflicts here."""
        updated = now_us()
        pk = self.connection.execute(
            insert(resources).returning(resources.c.pk),
            {"type": resource_type, "id": resource_id, "version": 1, "updated": updated, "deleted": False},
        ).scalar_one()
        return self.record(pk, resource_type, resource_id, resource, 1, updated, method, fresh=True)

    def write_version(self, pk: int, resource_type: str, resource_id: str, resource: dict[str, Any] | None,
                      version: int, previous_updated: int, method: str) -> StoredResource:
        updated = max(now_us(), previous_updated + 1)
        self.connection.execute(
            update(resources).where(resources.c.pk == pk)
            .values(version=version, updated=updated, deleted=resource is None)
        )
        return self.record(pk, resource_type, resource_id, resource, version, updated, method, fresh=False)

    def record(self, pk: int, resource_type: str, resource_id: str, resource: dict[str, Any] | None,
               version: int, updated: int, method: str, *, fresh: bool) -> StoredResource:
        """Queue the version row and the index rows of a write."""
        self.locked.pop((resource_type, resource_id), None)
        body = None if resource is None else self.canonical(resource_type, resource_id, resource, version, updated)
        self.pending.versions.append((pk, version, resource_type, resource_id, updated, method, body))
        self.touched.append(pk)
        if self.reach is not None:
            self.written_pks.append(pk)
        if not fresh:
            self.pending.stale.append(pk)
        if resource is not None:
            indexed = {**resource, "id": resource_id}
            for table, rows in self.services.indexer.rows(indexed).items():
                if rows:
                    self.pending.index.setdefault(table, []).extend((pk, *row) for row in rows)
        stored = StoredResource(resource_type, resource_id, version, updated, resource is None, body)
        self.notify(stored, resource)
        return stored

    def notify(self, stored: StoredResource, resource: dict[str, Any] | None) -> None:
        self.versions_written += 1
        self.references.written(stored.type, stored.id, resource, stored.body)
        for listener in self.services.listeners:
            listener.written(self, stored, resource)

    def finish(self) -> None:
        """End of a unit of work: listeners react to what was written (and may write more), then flush."""
        self.check_written()
        if self.versions_written:  # listeners only hear of units that wrote
            for listener in self.services.listeners:
                listener.before_commit(self)
        self.check_references()
        for finisher in self.finishers:
            finisher()

    def discard_pending(self) -> None:
        """Forget queued rows of a failed batch entry (its savepoint is rolled back), and the holders read in
        it: the shared lock they were read under may have gone with the savepoint (the next entry takes it
        again)."""
        self.pending = PendingRows()
        self.written_pks = []
        self.holders = None
        self.references = ReferenceLedger(self.services.integrity, self.services.base_url)

    def check_references(self) -> None:
        """Referential integrity of what the unit wrote and deleted so far, as REFERENTIAL_INTEGRITY
        asks (store/integrity.py): 400 for a reference to a resource the caller cannot find, 409 for a
        delete that others still refer to."""
        self.flush()
        self.references.check(self)

    def flush(self) -> None:
        """Write queued version and index rows (before any read that could need them)."""
        pending = self.pending
        if pending.empty():
            return
        self.pending = PendingRows()
        holding = self.services.holdings.before_flush(self, pending)
        if pending.creates:
            self.write_creates(pending)
        if pending.stale:
            for table in INDEX_TABLES.values():
                self.connection.execute(delete(table).where(among(table.c.pk, pending.stale, self.postgres)))
        insert_rows(self.connection, "resource_versions", VERSION_COLUMNS, pending.versions)
        if self.services.outbox is not None:  # topic events, in this transaction (server/events/outbox.py)
            self.services.outbox.record(self, pending.versions)
        for name, rows in pending.index.items():
            insert_rows(self.connection, INDEX_TABLES[name].name, COLUMNS[name], rows)
        if holding is not None:
            self.services.holdings.after_flush(self, holding, pending)

    def write_creates(self, pending: PendingRows) -> None:
        """Allocate keys for queued creates and turn them into resource, version and index rows."""
        keys = allocate_keys(self.connection, len(pending.creates))
        self.touched.extend(keys)
        if self.reach is not None:
            self.written_pks.extend(keys)
        rows = []
        for pk, create in zip(keys, pending.creates, strict=True):
            rows.append((pk, create.type, create.id, 1, create.updated, False))
            pending.versions.append((pk, 1, create.type, create.id, create.updated, create.method, create.body))
            for name, index_rows in create.index.items():
                pending.index.setdefault(name, []).extend((pk, *row) for row in index_rows)
        insert_rows(self.connection, "resources", RESOURCE_COLUMNS, rows)


VERSION_META = ("versionId", "lastUpdated", "source")


def content_of(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource without the meta elements that describe a version rather than its content."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    kept = {k: v for k, v in meta.items() if k not in VERSION_META}
    trimmed = {k: v for k, v in resource.items() if k != "meta"}
    if kept:
        trimmed["meta"] = kept
    return trimmed


def same_content(stored_body: str, resource: dict[str, Any]) -> bool:
    """Whether an update would change nothing: equal apart from versionId, lastUpdated and source
    (a reload that only names a newer load as its source keeps the version that first wrote it)."""
    stored = jsontext.loads(stored_body)
    candidate = {**resource, "id": stored.get("id")}
    if content_of(stored) != content_of(candidate):
        return False
    as_written = orjson.OPT_SORT_KEYS  # equal values, and equal numbers as written too (1.50 is not 1.5)
    return jsontext.dumps(content_of(stored), as_written) == jsontext.dumps(content_of(candidate), as_written)


def is_unique_violation(exc: Exception) -> bool:
    """Whether an exception is a unique-constraint violation (a concurrent create of the same id)."""
    from sqlalchemy.exc import IntegrityError

    return isinstance(exc, IntegrityError)


def patient_references(resource: Any) -> set[str]:
    """The ids of the Patients a resource refers to (relative references, anywhere in it)."""
    found: set[str] = set()
    stack = [resource]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            reference = value.get("reference")
            if isinstance(reference, str) and reference.startswith("Patient/"):
                found.add(reference[8:].split("/", 1)[0])
            stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, (dict, list)))
    return found


PATIENT_REFERENCE = re.compile(r'"reference":"Patient/([^"/]+)"')


def patient_ids_in(body: str | None) -> set[str]:
    """The Patients a stored body (canonical JSON) refers to."""
    return set(PATIENT_REFERENCE.findall(body)) if body else set()
