"""The access policy: per kind of organisation, as data (`profiles/access/<kind>.yaml`), and the one check."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import yaml

from ..fhir.outcome import FhirError, Issue
from .context import Caller

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
ALL = "all"
PLACEHOLDER = re.compile(r"\{(organization|organization_code|days_ago:\d+)\}")
DAYS_AGO = re.compile(r"\{days_ago:(\d+)\}")
KIND_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
OWNED_TYPES = frozenset({"Subscription"})
"""Types a client's organisation owns whatever its kind: it reaches those it created (store/search/reach.py)."""
OWNER_OPERATIONS = frozenset({"status", "events"})
"""Operations on an owned resource (Subscription $status, $events): its owner runs them whatever its kind."""
READING = frozenset({"read", "vread", "search", "history", "history-instance", "history-type", "history-system"})


@dataclass(frozen=True)
class Relationship:
    """A way an organisation comes to hold a person: a FHIR search whose matches name the patient.

    `search` is a query (`Encounter?service-provider:Organization.identifier={organization}`) and
    `patient` the reference parameter of its matches that names the person (empty: the matches are
    Patients themselves)."""

    search: str
    patient: str = ""

    def query(self, organization: str | None, today: datetime | None = None) -> tuple[str, list[tuple[str, str]]]:
        """The resource type and criteria of this relationship for an organisation."""
        from urllib.parse import parse_qsl

        resource_type, _, query = self.search.partition("?")
        params = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.append((name, fill(value, organization, today)))
        return resource_type, params

    def passing(self, organization: str | None, since: datetime, today: datetime) -> list[Passing]:
        """What of this relationship can change only because the days from `since` to `today` passed: one
        `Passing` per criterion naming a date relative to today (none when no criterion does)."""
        from urllib.parse import parse_qsl

        resource_type, _, query = self.search.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        found = []
        for index, (name, value) in enumerate(pairs):
            dated = DAYS_AGO.search(value)
            if dated is None:
                continue
            days = timedelta(days=int(dated.group(1)))
            others = [(other, fill(text, organization, today)) for at, (other, text) in enumerate(pairs)
                      if at != index and not DAYS_AGO.search(text)]
            found.append(Passing(resource_type, tuple(others), name, value[:dated.start()],
                                 value[dated.end():], (since - days).date().isoformat(),
                                 (today - days).date().isoformat()))
        return found


@dataclass(frozen=True)
class Passing:
    """A relationship's criterion naming a date relative to today, as the days from one day to another move it:
    criterion `name` with comparator `prefix` named `first` on the earlier day and names `last` on the later.
    A match of the relationship's other criteria (`others`; the other dated ones left out) moves in or out only
    when a bound of its `name` value lies between the two dates (`rest`: text after the date, if any)."""

    resource_type: str
    others: tuple[tuple[str, str], ...]
    name: str
    prefix: str
    rest: str
    first: str
    last: str


def fill(value: str, organization: str | None, today: datetime | None) -> str:
    """A policy value with its placeholders filled in."""
    def replace(match: re.Match[str]) -> str:
        word = match.group(1)
        if word == "organization":
            return organization_token(organization)
        if word == "organization_code":
            return organization_token(organization).rpartition("|")[2]
        days = int(word.split(":", 1)[1])
        return ((today or datetime.now(UTC)) - timedelta(days=days)).date().isoformat()
    return PLACEHOLDER.sub(replace, value)


def organization_token(organization: str | None) -> str:
    """`system|code` of an organisation (a bare code is an ODS code); a token no identifier has when unset."""
    if not organization:
        return "urn:sharedcare:none|none"
    return organization if "|" in organization else f"{ODS}|{organization}"


@dataclass(frozen=True)
class AccessPolicy:
    """What one kind of organisation may see and do (see profiles/access/README.md)."""

    kind: str
    title: str = ""
    patients: str | tuple[Relationship, ...] = ()
    read: str | frozenset[str] = frozenset()
    write: str | frozenset[str] = frozenset()
    shared_read: str | frozenset[str] = frozenset()
    shared_write: str | frozenset[str] = frozenset()
    operations: str | frozenset[str] = frozenset()
    case_status_any_patient: bool = False
    break_glass: bool = False
    objection: str = "honoured"
    audit_reader: bool = False
    administrator: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict[str, Any], origin: str) -> AccessPolicy:
        kind = str(data.get("kind") or "")
        if not KIND_NAME.match(kind):
            raise ValueError(f"{origin}: 'kind' must be a lower-case name, not {kind!r}")
        patients = data.get("patients") or []
        if patients != ALL:
            patients = tuple(Relationship(**entry) if isinstance(entry, dict) else Relationship(str(entry))
                             for entry in patients)
            for relationship in patients:
                if "?" not in relationship.search:
                    raise ValueError(f"{origin}: relationship {relationship.search!r} is not a search")
        objection = str(data.get("objection", "honoured"))
        if objection not in ("honoured", "exempt"):
            raise ValueError(f"{origin}: objection must be 'honoured' or 'exempt'")
        return cls(
            kind=kind,
            title=str(data.get("title", "")),
            patients=patients,
            read=type_set(data.get("read")),
            write=type_set(data.get("write")),
            shared_read=type_set(data.get("shared_read")),
            shared_write=type_set(data.get("shared_write")),
            operations=type_set(data.get("operations")),
            case_status_any_patient=bool(data.get("case_status_any_patient", False)),
            break_glass=bool(data.get("break_glass", False)),
            objection=objection,
            audit_reader=bool(data.get("audit_reader", False)),
            administrator=bool(data.get("administrator", False)),
        )

    @property
    def relationship_types(self) -> frozenset[str]:
        """The types whose writes make the organisation hold a person (the types its relationships search)."""
        if isinstance(self.patients, str):
            return frozenset()
        return frozenset(r.search.partition("?")[0] for r in self.patients)

    @property
    def whole_record(self) -> bool:
        """Whether the policy reaches every person (the host's own integration engine)."""
        return self.patients == ALL

    def reads_record_type(self, resource_type: str) -> bool:
        return self.read == ALL or resource_type in self.read

    def writes_record_type(self, resource_type: str) -> bool:
        return self.write == ALL or resource_type in self.write

    def reads_shared(self, resource_type: str) -> bool:
        return self.shared_read == ALL or resource_type in self.shared_read

    def writes_shared(self, resource_type: str) -> bool:
        return self.shared_write == ALL or resource_type in self.shared_write

    def runs(self, operation: str) -> bool:
        return self.operations == ALL or operation in self.operations


def type_set(value: Any) -> str | frozenset[str]:
    if value == ALL:
        return ALL
    return frozenset(str(v) for v in (value or []))


@dataclass(frozen=True)
class PolicyBook:
    """Every access policy by kind, and the record's extra compartment membership (types R4's Patient
    compartment leaves out, with the parameters that name their patient)."""

    policies: dict[str, AccessPolicy]
    compartment: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, extra_folder: str | Path | None = None) -> PolicyBook:
        """The bundled policies (profiles/access/), then any of `extra_folder` (same kind: replaced)."""
        texts: dict[str, tuple[str, str]] = {}
        bundled = package_files.files("profiles").joinpath("access")
        for entry in sorted(bundled.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                texts[entry.name] = (f"profiles/access/{entry.name}", entry.read_text(encoding="utf-8"))
        if extra_folder:
            for path in sorted(Path(extra_folder).glob("*.yaml")):
                texts[path.name] = (str(path), path.read_text(encoding="utf-8"))
        policies: dict[str, AccessPolicy] = {}
        compartment: dict[str, tuple[str, ...]] = {}
        for name, (origin, text) in texts.items():
            data = yaml.safe_load(text) or {}
            if name == "compartment.yaml":
                compartment = {str(k): tuple(v) for k, v in (data.get("members") or {}).items()}
                continue
            policy = AccessPolicy.from_data(data, origin)
            policies[policy.kind] = policy
        return cls(policies, compartment)

    def policy(self, kind: str) -> AccessPolicy:
        found = self.policies.get(kind)
        if found is None:
            raise FhirError(403, [Issue("security", f"No access policy for clients of kind {kind!r}")])
        return found

    def kinds(self) -> list[str]:
        return sorted(self.policies)


def forbidden(message: str) -> FhirError:
    return FhirError(403, [Issue("forbidden", message)])


def authorize(caller: Caller, action: str, resource_type: str, policy: AccessPolicy | None = None,
              record: bool | None = None) -> None:
    """Raise 403 unless the caller's scopes, and its kind's policy when given, allow `action` on a type;
    `record` says whether the type belongs to a person's record (else it is a shared type).

    This is the type-level half of the decision; which resources of the type a caller reaches is the
    other half, put into every query by `store/search/reach.py` from the same policy."""
    if resource_type == "AuditEvent" and action not in READING:
        raise FhirError(405, [Issue("not-supported", "AuditEvents are written by the server only; they cannot be "
                                                     "created, changed or deleted through the API")])
    if not caller.allows(action, resource_type):
        raise forbidden(f"The client's scopes do not allow {action} of {resource_type} resources")
    if policy is None or policy.whole_record or resource_type in OWNED_TYPES:
        return
    reading = action in READING
    in_record = policy.reads_record_type if reading else policy.writes_record_type
    shared = policy.reads_shared if reading else policy.writes_shared
    if record is None:
        allowed = in_record(resource_type) or shared(resource_type)
    else:
        allowed = in_record(resource_type) if record else shared(resource_type)
    if not allowed and not (resource_type == "AuditEvent" and reading and policy.audit_reader):
        raise forbidden(f"Clients of kind {policy.kind} may not {action} {resource_type} resources")


def authorize_operation(caller: Caller, policy: AccessPolicy, name: str, reads: tuple[str, ...],
                        writes: tuple[str, ...]) -> None:
    """Raise 403 unless the kind's policy runs the operation and the scopes cover what it reads and writes."""
    if not policy.runs(name) and not (name in OWNER_OPERATIONS and set(reads) <= OWNED_TYPES):
        raise forbidden(f"Clients of kind {policy.kind} may not run ${name}")
    for resource_type in reads:
        if not (caller.allows("r", resource_type) or caller.allows("s", resource_type)):
            raise forbidden(f"${name} reads {resource_type} resources, which the client's scopes do not allow")
    for resource_type in writes:
        if not (caller.allows("c", resource_type) and caller.allows("u", resource_type)):
            raise forbidden(f"${name} writes {resource_type} resources, which the client's scopes do not allow")
