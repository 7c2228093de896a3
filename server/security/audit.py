"""What an audit record holds, and how it reads as an IHE BALP (Basic Audit Log Patterns) AuditEvent."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ..fhir.dates import format_instant, now_us
from .context import Caller

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_KIND = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
MAX_QUERY = 4000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
ACTIONS = {"create": "C", "update": "U", "patch": "U", "delete": "D", "read": "R", "vread": "R"}
PROFILES = {"C": "Create", "U": "Update", "D": "Delete", "R": "Read", "E": "Query"}


@dataclass
class AuditRecord:
    """One request as the audit trail keeps it: who, what, about whom, when, and how it ended."""

    client: str
    interaction: str
    action: str
    organization: str | None = None
    kind: str | None = None
    request_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    query: str | None = None
    purpose: str | None = None
    alert: bool = False
    detail: str | None = None
    status: int = 0
    recorded: int = field(default_factory=now_us)
    patients: set[str] = field(default_factory=set)
    written: bool = False  # kept already (an autocommit read's record, so a retry does not keep it twice)

    @classmethod
    def of_request(cls, caller: Caller, method: str, path: str, params: list[tuple[str, str]],
                   interaction: str, resource_type: str | None, resource_id: str | None,
                   query_text: str | None = None) -> AuditRecord:
        """The record of a FHIR request as it arrives (the outcome is filled in when it is answered); its
        query is the URL's query string as sent (`query_text`), or else made from the parameters."""
        if query_text is None:
            query_text = urlencode(params) if params else ""
        query = f"{method} {path}" + (f"?{query_text}" if query_text else "")
        breaking = caller.break_glass is not None
        return cls(
            client=caller.subject, interaction=interaction, action=action_of(interaction),
            organization=caller.organization, kind=caller.kind, request_id=caller.request_id,
            resource_type=resource_type, resource_id=resource_id, query=query[:MAX_QUERY],
            purpose=caller.purpose, alert=breaking,
            detail=f"break-glass: {caller.break_glass}" if breaking else None)

    def ended(self, status: int, detail: str | None = None) -> AuditRecord:
        """The record with its outcome (and the reason a refused request was refused)."""
        kept = self.detail if not detail else detail if not self.detail else f"{self.detail}; {detail}"
        copy = object.__new__(AuditRecord)  # a shallow copy, as `replace` makes, without its field-by-field walk
        copy.__dict__.update(self.__dict__)
        copy.status = status
        copy.detail = printable(kept[:MAX_QUERY]) if kept else None
        copy.query = printable(self.query) if self.query else None
        return copy


def printable(text: str) -> str:
    """Text the database takes: control characters (NUL and the like) shown as U+FFFD."""
    return CONTROL.sub("\ufffd", text)


def action_of(interaction: str) -> str:
    """The BALP action code of an interaction: C, R, U, D, or E (execute: searches, history, operations)."""
    return ACTIONS.get(interaction, "E")


def outcome_code(status: int) -> str:
    """AuditEvent.outcome: 0 success, 4 minor failure (refused, not found), 8 serious failure (server)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def audit_event(row: Any, patients: list[str], project_base: str) -> dict[str, Any]:
    """An audit row as an AuditEvent resource following IHE BALP."""
    action = row.action
    patient_kind = "Patient" if patients else ""
    profile = BALP + (patient_kind + PROFILES.get(action, "Query") if action != "E" or row.interaction.startswith(
        ("search", "history")) else "Query")
    if row.interaction == "token":
        profile = BALP + "OAUTHaccessTokenUse"
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.pk),
        "meta": {"profile": [profile]},
        "type": ({"system": DCM, "code": "110113", "display": "Security Alert"} if row.alert else
                 {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}),
        "subtype": [{"system": INTERACTION, "code": row.interaction}],
        "action": action,
        "recorded": format_instant(row.recorded),
        "outcome": outcome_code(row.status),
        "outcomeDesc": f"HTTP {row.status}" + (f": {row.detail}" if row.detail else ""),
    }
    if row.purpose:
        event["purposeOfEvent"] = [{"coding": [{"system": PURPOSE, "code": row.purpose}]}]
    agents: list[dict[str, Any]] = [{
        "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
        "who": {"identifier": {"system": f"{project_base}/Id/client", "value": row.client}},
        "requestor": True,
    }]
    if row.organization:
        system, _, value = row.organization.rpartition("|")
        agents.append({"type": {"text": f"organisation ({row.kind})" if row.kind else "organisation"},
                       "who": {"identifier": {"system": system, "value": value}}, "requestor": False})
    agents.append({"type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
                   "who": {"display": "shared care record server"}, "requestor": False})
    event["agent"] = agents
    event["source"] = {"observer": {"display": "shared care record server"},
                       "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                                 "code": "4", "display": "Application Server"}]}
    entities: list[dict[str, Any]] = [
        {"what": {"reference": f"Patient/{patient}"}, "type": {"system": ENTITY_TYPE, "code": "1"},
         "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}} for patient in patients]
    if row.resource_type and row.resource_id:
        entities.append({"what": {"reference": f"{row.resource_type}/{row.resource_id}"},
                         "type": {"system": ENTITY_TYPE, "code": "2"},
                         "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}})
    if row.query:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2"},
                         "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                         "query": base64.b64encode(row.query.encode()).decode()})
    if row.request_id:
        entities.append({"what": {"identifier": {"value": row.request_id}},
                         "type": {"system": ENTITY_KIND, "code": "XrequestId"}})
    event["entity"] = entities
    return event
