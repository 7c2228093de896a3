"""One patient's case-management record: programme episodes, plans, teams, flags, tasks, services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from .calendar import parse_day
from .evidence import codings, extension_value, number, profiles_of
from .names import CARE_PLAN_CATEGORY, SNOMED
from .reads import stream

if TYPE_CHECKING:
    from .service import CareServices

Json = dict[str, Any]
OPEN_TASK = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})
CURRENT_EPISODE = frozenset({"planned", "waitlist", "active", "onhold"})
SCREEN = "screen-for-case-management"
ASSESSMENT = "assessment"
ADMISSION_ALERT = "admission-alert"


@dataclass
class Stored:
    """A current resource of the record: type, id and body."""

    type: str
    id: str
    body: Json

    @property
    def ref(self) -> str:
        return f"{self.type}/{self.id}"

    @property
    def status(self) -> str:
        return str(self.body.get("status", ""))


@dataclass
class CareRecord:
    """The care package's view of one patient."""

    patient: Stored | None
    programmes: list[Stored] = field(default_factory=list)
    services: list[Stored] = field(default_factory=list)
    plans: list[Stored] = field(default_factory=list)
    teams: list[Stored] = field(default_factory=list)
    flags: list[Stored] = field(default_factory=list)
    tasks: list[Stored] = field(default_factory=list)

    @property
    def episode(self) -> Stored | None:
        """The current programme episode (planned or active), the latest if several."""
        current = [e for e in self.programmes if e.status in CURRENT_EPISODE]
        return max(current, key=lambda e: str((e.body.get("period") or {}).get("start", ""))) if current else None

    def plan_of(self, episode: Stored | None) -> Stored | None:
        """The active shared care plan (of the episode's team when there is one)."""
        active = [p for p in self.plans if p.status == "active" and is_shared_plan(p.body)]
        return max(active, key=lambda p: str((p.body.get("period") or {}).get("start", ""))) if active else None

    def tasks_with(self, code: str, system: str, statuses: frozenset[str] | None = None) -> list[Stored]:
        return [t for t in self.tasks if has_code(t.body.get("code"), system, code)
                and (statuses is None or t.status in statuses)]

    def declined_since(self, system: str, decision_system: str, since: date) -> bool:
        for task in self.tasks_with(SCREEN, system):
            if has_code(task.body.get("businessStatus"), decision_system, "declined"):
                day = parse_day((task.body.get("executionPeriod") or {}).get("end") or task.body.get("lastModified"))
                if day is not None and day >= since:
                    return True
        return False


def has_code(concept: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in codings(concept))


def is_shared_plan(plan: Json) -> bool:
    return any(has_code(category, SNOMED, CARE_PLAN_CATEGORY) for category in plan.get("category") or ())


def load_record(care: CareServices, connection: Connection, patient_id: str) -> CareRecord:
    """Read a patient's care record (a handful of indexed queries)."""
    names = care.names
    patient = None
    for resource_id, text in stream(connection, "Patient", ids=[patient_id]):
        patient = Stored("Patient", resource_id, orjson.loads(text))
    record = CareRecord(patient)
    if patient is None:
        return record
    for resource_id, text in stream(connection, "EpisodeOfCare", patients=[patient_id]):
        body = orjson.loads(text)
        stored = Stored("EpisodeOfCare", resource_id, body)
        if any(has_code(t, names.programme_system, c.get("code", "")) for t in body.get("type") or ()
               for c in codings(t)):
            record.programmes.append(stored)
        elif names.service_episode in profiles_of(body) or extension_value(body, names.service_type_extension,
                                                                           "valueCodeableConcept"):
            record.services.append(stored)
    for resource_type, bucket in (("CarePlan", record.plans), ("CareTeam", record.teams), ("Flag", record.flags),
                                  ("Task", record.tasks)):
        for resource_id, text in stream(connection, resource_type, patients=[patient_id]):
            bucket.append(Stored(resource_type, resource_id, orjson.loads(text)))
    return record


def patient_name(patient: Json) -> str:
    for name in patient.get("name") or ():
        if isinstance(name, dict):
            if name.get("text"):
                return str(name["text"])
            given = " ".join(str(g) for g in name.get("given") or ())
            return " ".join(p for p in (given, str(name.get("family", ""))) if p)
    return "the patient"


def person_name(resource: Json) -> str:
    for name in resource.get("name") or ():
        if isinstance(name, dict):
            if name.get("text"):
                return str(name["text"])
            parts = [*(str(p) for p in name.get("prefix") or ()), *(str(g) for g in name.get("given") or ()),
                     str(name.get("family", ""))]
            return " ".join(p for p in parts if p)
    return ""


def phone(resource: Json) -> str:
    for telecom in resource.get("telecom") or ():
        if isinstance(telecom, dict) and telecom.get("system") in ("phone", None) and telecom.get("value"):
            return str(telecom["value"])
    return ""


def per_week(amount: float, unit: str) -> str:
    """Planned units a week in words: `10.5 hours a week`, `1 night a week`; a package counted in weeks is
    `weekly` (1 a week), else `0.5 of each week`."""
    singular = unit.lower().removesuffix("s")  # the service-unit codes: Hours, Days, Nights, Sessions, Meals, Weeks
    if singular == "week":
        return "weekly" if amount == 1 else f"{amount:g} of each week"
    return f"{amount:g} {singular if amount == 1 else singular + 's'} a week"


def service_line(care: CareServices, body: Json) -> str:
    """A plain-text line for a package of care: `Home Support: 10.5 hours a week, Upton Home Care Ltd, ...`."""
    names = care.names
    component = next((c.get("display") or c.get("code") for t in body.get("type") or () for c in codings(t)), "")
    units = extension_value(body, names.units_extension, "valueQuantity") or {}
    cost = extension_value(body, names.cost_extension, "valueMoney") or {}
    provider = extension_value(body, names.provider_extension, "valueReference") or {}
    parts = [str(component or "Social care service")]
    amount = number(units.get("value"))
    if amount is not None:
        parts.append(per_week(amount, str(units.get("code") or units.get("unit") or "units")))
    if isinstance(provider, dict) and provider.get("display"):
        parts.append(str(provider["display"]))
    weekly = number(cost.get("value"))
    if weekly is not None:
        parts.append(f"£{weekly:.2f} a week")
    start = (body.get("period") or {}).get("start")
    status = body.get("status")
    tail = f" (since {start})" if start else ""
    if status == "onhold":
        tail += " - suspended"
    text = parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")
    return text + tail
