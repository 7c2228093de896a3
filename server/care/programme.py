"""The programme: screening decisions, enrolment from a template, the care plan, caseloads, discharge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson

from ..fhir.outcome import FhirError, Issue, bad_request, not_found
from ..store.repository import Repository, StoredResource
from .calendar import iso_now, parse_day, shift
from .evidence import codings, reference_id
from .names import CARE_PLAN_CATEGORY, FLAG_DETAIL, SNOMED
from .reads import stream
from .record import (
    ASSESSMENT,
    OPEN_TASK,
    SCREEN,
    CareRecord,
    Stored,
    has_code,
    load_record,
    patient_name,
    person_name,
    phone,
    service_line,
)
from .rulesets import ActivitySpec, Template

if TYPE_CHECKING:
    from .service import CareServices

Json = dict[str, Any]
DECISIONS = ("accepted", "declined")
UNITS = {"d": "days", "wk": "weeks", "mo": "months"}


def business_rule(message: str, expression: str = "") -> FhirError:
    return FhirError(422, [Issue("business-rule", message, (expression,) if expression else ())])


@dataclass
class Manager:
    """A case manager: the PractitionerRole, its Practitioner and what the case status shows of them."""

    role: Stored
    practitioner: Stored | None

    @property
    def ref(self) -> str:
        return self.role.ref

    @property
    def name(self) -> str:
        return person_name(self.practitioner.body) if self.practitioner else str(
            (self.role.body.get("practitioner") or {}).get("display", ""))

    def role_text(self, care: CareServices) -> str:
        for concept in self.role.body.get("code") or ():
            for coding in codings(concept):
                return str(coding.get("display") or care.display(str(coding.get("system")), str(coding.get("code")))
                           or coding.get("code"))
            if concept.get("text"):
                return str(concept["text"])
        return "case manager"

    @property
    def telephone(self) -> str:
        return phone(self.role.body) or (phone(self.practitioner.body) if self.practitioner else "")

    @property
    def organization(self) -> str | None:
        reference = self.role.body.get("organization") or {}
        return reference.get("reference") if isinstance(reference, dict) else None


@dataclass
class Load:
    """A case manager's caseload: active patients and patients enrolled this month."""

    manager: str
    active: list[str] = field(default_factory=list)
    new_this_month: list[str] = field(default_factory=list)


def read_one(repo: Repository, reference: str) -> Stored:
    resource_type, _, resource_id = reference.partition("/")
    if not resource_type or not resource_id:
        raise bad_request(f"{reference!r} is not a literal reference (Type/id)")
    stored = repo.read(resource_type, resource_id)
    return Stored(resource_type, resource_id, stored.json())


def manager_of(repo: Repository, reference: str) -> Manager:
    role = read_one(repo, reference)
    if role.type != "PractitionerRole":
        raise bad_request(f"The case manager must be a PractitionerRole, not {role.type}", "careManager")
    practitioner_id = reference_id(role.body.get("practitioner"), "Practitioner")
    practitioner = None
    if practitioner_id:
        found = repo.fetch_current("Practitioner", practitioner_id)
        if found is not None and not found.deleted:
            practitioner = Stored("Practitioner", practitioner_id, found.json())
    return Manager(role, practitioner)


def programme_episodes(care: CareServices, repo: Repository, *, reached: bool = False) -> list[Stored]:
    """Every programme EpisodeOfCare (any programme code), current versions; with `reached`, only those in
    the caller's reach (what is shown to it, as opposed to what is counted)."""
    tokens: list[tuple[str, list[str] | None, str | None]] = [("type", None, care.names.programme_system)]
    reach = repo.reach if reached else None
    return [Stored("EpisodeOfCare", i, orjson.loads(t)) for i, t in stream(repo.connection, "EpisodeOfCare",
                                                                           tokens=tokens, reach=reach)]


def caseloads(care: CareServices, repo: Repository, today: date) -> dict[str, Load]:
    """Caseload per case manager (PractitionerRole reference)."""
    loads: dict[str, Load] = {}
    month = (today.year, today.month)
    for episode in programme_episodes(care, repo):
        manager = (episode.body.get("careManager") or {}).get("reference")
        patient = (episode.body.get("patient") or {}).get("reference")
        if not manager or episode.status not in ("active", "planned"):
            continue
        load = loads.setdefault(manager, Load(manager))
        load.active.append(str(patient))
        start = parse_day((episode.body.get("period") or {}).get("start"))
        if start is not None and (start.year, start.month) == month:
            load.new_this_month.append(str(patient))
    return loads


def case_managers(care: CareServices, repo: Repository, organization: str | None = None) -> list[Stored]:
    """PractitionerRoles in a case-manager role (optionally of one organisation)."""
    tokens: list[tuple[str, list[str] | None, str | None]] = [
        ("role", list(care.book.settings.case_manager_roles), care.names.role_system)]
    found = []
    for resource_id, text in stream(repo.connection, "PractitionerRole", tokens=tokens):
        body = orjson.loads(text)
        if body.get("active") is False:
            continue
        if organization and (body.get("organization") or {}).get("reference") != organization:
            continue
        found.append(Stored("PractitionerRole", resource_id, body))
    return found


def check_capacity(care: CareServices, load: Load, manager: Manager, who: str) -> list[str]:
    """Why enrolling one more patient with this case manager is over capacity (empty when it is not)."""
    settings = care.book.settings
    problems = []
    if len(load.active) >= settings.caseload:
        problems.append(f"{manager.name or manager.ref} already holds {len(load.active)} active patients "
                        f"(caseload capacity {settings.caseload})")
    if len(load.new_this_month) >= settings.new_per_month:
        problems.append(f"{manager.name or manager.ref} has taken on {len(load.new_this_month)} new patients this "
                        f"month (at most {settings.new_per_month} a month)")
    if problems:
        problems = [f"Enrolling {who} is refused: " + "; ".join(problems)
                    + ". Choose another case manager, or enrol with override=true to exceed the capacity."]
    return problems


# --------------------------------------------------------------- screening

def screening_task(care: CareServices, patient: Stored, *, found_by: str, reason: str, focus: str | None = None,
                   when: str | None = None) -> Json:
    """A new "screen for case management" Task for the team (raised `when`, by default now)."""
    names = care.names
    now = iso_now()
    task: Json = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent" if found_by == "incidence" else "routine",
        "code": {"coding": [{"system": names.task_system, "code": SCREEN, "display": "Screen for case management"}]},
        "description": f"Screen {patient_name(patient.body)} for case management: {reason}",
        "for": {"reference": patient.ref, "display": patient_name(patient.body)},
        "authoredOn": when or now,
        "lastModified": now,
        "input": [{"type": {"text": "found-by"}, "valueCode": found_by}],
    }
    if focus:
        task["focus"] = {"reference": focus}
    return task


def record_decision(care: CareServices, repo: Repository, record: CareRecord, decision: str, by: str | None,
                    reason: str | None, day: date) -> Stored:
    """Record a screening decision on the open screening Task (creating one when there is none)."""
    if decision not in DECISIONS:
        raise bad_request(f"decision must be accepted or declined, not {decision!r}", "decision", code="value")
    names = care.names
    patient = record.patient
    assert patient is not None
    open_tasks = record.tasks_with(SCREEN, names.task_system, OPEN_TASK)
    if open_tasks:
        task = dict(open_tasks[0].body)
        task_id = open_tasks[0].id
    else:
        task = screening_task(care, patient, found_by="case-finding", reason="case finding list",
                              when=day.isoformat())
        task_id = str(uuid.uuid4())
        task["id"] = task_id
    task["status"] = "completed"
    display = "Accepted for case management" if decision == "accepted" else "Declined case management"
    task["businessStatus"] = {"coding": [{"system": names.screening_system, "code": decision, "display": display}]}
    if by:
        task["owner"] = {"reference": by}
    if reason:
        task["statusReason"] = {"text": reason}
    task["executionPeriod"] = {"start": task.get("authoredOn", day.isoformat())[:10], "end": day.isoformat()}
    task["lastModified"] = iso_now()
    task["output"] = [{"type": {"text": "decision"}, "valueCode": decision}]
    written = repo.update("Task", task_id, {**task, "id": task_id}, new=not open_tasks)  # new: an id made here
    return Stored("Task", task_id, written.stored.json())  # as stored: with its meta


def found_by(task: Json) -> str:
    for entry in task.get("input") or ():
        if (entry.get("type") or {}).get("text") == "found-by":
            return str(entry.get("valueCode", ""))
    return ""


# --------------------------------------------------------------- enrolment

@dataclass
class Enrolment:
    """What an enrolment asks for."""

    patient: str
    template: str
    care_manager: str
    start: date
    team: list[str] = field(default_factory=list)
    organization: str | None = None
    override: bool = False
    screened_by: str | None = None
    reason: str | None = None


@dataclass
class Enrolled:
    """The resources an enrolment wrote, as stored (with their meta)."""

    episode: Json
    care_team: Json
    care_plan: Json
    flag: Json
    assessment: Json
    screening: Stored
    warnings: list[str] = field(default_factory=list)


def enrol(care: CareServices, repo: Repository, request: Enrolment) -> Enrolled:
    """Enrol a patient: screening accepted, programme episode, team, care plan, alert and assessment task."""
    record = load_record(care, repo.connection, request.patient)
    patient = record.patient
    if patient is None:
        raise not_found(f"Patient/{request.patient} is not known")
    who = patient_name(patient.body)
    if patient.body.get("deceasedDateTime") or patient.body.get("deceasedBoolean"):
        raise business_rule(f"{who} is recorded as deceased and cannot be enrolled")
    current = record.episode
    if current is not None:
        since = (current.body.get("period") or {}).get("start", "?")
        raise business_rule(f"{who} is already case-managed (EpisodeOfCare/{current.id}, since {since})")
    template = care.book.templates.get(request.template)
    if template is None:
        raise bad_request(f"Unknown programme template {request.template!r}; known: "
                          + ", ".join(sorted(care.book.templates)), "template")
    manager = manager_of(repo, request.care_manager)
    load = caseloads(care, repo, request.start).get(manager.ref, Load(manager.ref))
    problems = check_capacity(care, load, manager, who)
    warnings = []
    if problems and not request.override:
        raise business_rule(problems[0], "careManager")
    if problems:
        warnings.append(problems[0].replace("is refused", "exceeds capacity (override given)"))
    organization = request.organization or manager.organization
    if not organization:
        raise bad_request("The programme episode needs a managing organisation: give 'organization' or a case "
                          "manager PractitionerRole with an organization", "organization")
    open_screen = record.tasks_with(SCREEN, care.names.task_system, OPEN_TASK)
    newly_eligible = bool(open_screen) and found_by(open_screen[0].body) == "incidence"
    screening = record_decision(care, repo, record, "accepted", request.screened_by or manager.ref,
                                request.reason, request.start)
    ids = {name: str(uuid.uuid4()) for name in ("episode", "team", "plan", "flag", "assessment")}
    episode = episode_resource(care, patient, template, manager, organization, request.start, ids)
    team = team_resource(care, repo, patient, manager, request.team, organization, request.start, ids)
    plan = plan_resource(care, repo, record, template, manager, request.start, ids)
    flag = flag_resource(care, patient, template, manager, request.start, ids)
    due = None
    if newly_eligible:
        due = care.book.working_days.add(request.start, care.book.settings.assessment_days)
    assessment = assessment_task(care, patient, manager, request.start, due, ids)
    written = [repo.create(resource, resource_type=resource_type, assigned_id=ids[key]).stored.json()
               for resource_type, key, resource in (
                   ("EpisodeOfCare", "episode", episode), ("CareTeam", "team", team), ("CarePlan", "plan", plan),
                   ("Flag", "flag", flag), ("Task", "assessment", assessment))]
    return Enrolled(*written, screening, warnings)


def programme_display(care: CareServices, code: str) -> str:
    return care.display(care.names.programme_system, code) or code


def episode_resource(care: CareServices, patient: Stored, template: Template, manager: Manager,
                     organization: str, start: date, ids: dict[str, str]) -> Json:
    """The programme episode: planned until its start date (a population run activates it), then active."""
    names = care.names
    if start > care.today():
        history = [{"status": "planned", "period": {"start": care.today().isoformat()}}]
    else:
        history = [{"status": "active", "period": {"start": start.isoformat()}}]
    return {
        "resourceType": "EpisodeOfCare",
        "meta": {"profile": [names.programme_episode]},
        "status": history[-1]["status"],
        "statusHistory": history,
        "type": [{"coding": [{"system": names.programme_system, "code": template.programme,
                              "display": programme_display(care, template.programme)}],
                  "text": template.title}],
        "patient": {"reference": patient.ref, "display": patient_name(patient.body)},
        "managingOrganization": {"reference": organization},
        "period": {"start": start.isoformat()},
        "careManager": {"reference": manager.ref, "display": manager.name or manager.ref},
        "team": [{"reference": f"CareTeam/{ids['team']}"}],
    }


def role_coding(care: CareServices, role: Stored | None, default: str) -> Json:
    if role is not None:
        for concept in role.body.get("code") or ():
            for coding in codings(concept):
                if coding.get("system") == care.names.role_system:
                    return {k: v for k, v in coding.items() if k in ("system", "code", "display")}
    return {"system": care.names.role_system, "code": default,
            "display": care.display(care.names.role_system, default) or default}


def team_resource(care: CareServices, repo: Repository, patient: Stored, manager: Manager, members: list[str],
                  organization: str, start: date, ids: dict[str, str]) -> Json:
    participants = [{"role": [{"coding": [role_coding(care, manager.role, "case-manager")]}],
                     "member": {"reference": manager.ref, "display": manager.name or manager.ref},
                     "period": {"start": start.isoformat()}}]
    for reference in members:
        if reference == manager.ref:
            continue
        member = read_one(repo, reference)
        display = person_name(member.body) or str(member.body.get("name", "")) if member.type != "PractitionerRole" \
            else manager_of(repo, reference).name
        entry: Json = {"member": {"reference": member.ref, **({"display": display} if display else {})},
                       "period": {"start": start.isoformat()}}
        if member.type == "PractitionerRole":
            entry["role"] = [{"coding": [role_coding(care, member, "care-coordinator")]}]
        participants.append(entry)
    for reference in patient.body.get("generalPractitioner") or ():
        literal = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(literal, str) and literal.startswith(("Practitioner/", "Organization/")) and \
                all(p["member"]["reference"] != literal for p in participants):
            gp: Json = {"reference": literal}
            if reference.get("display"):
                gp["display"] = reference["display"]
            participants.append({"role": [{"coding": [role_coding(care, None, "gp")]}], "member": gp})
    return {
        "resourceType": "CareTeam",
        "meta": {"profile": [care.names.care_team]},
        "status": "active",
        "name": f"Case management team for {patient_name(patient.body)}",
        "subject": {"reference": patient.ref, "display": patient_name(patient.body)},
        "period": {"start": start.isoformat()},
        "participant": participants,
        "managingOrganization": [{"reference": organization}],
    }


def plan_end(template: Template, start: date) -> date:
    return shift(start, months=template.duration.get("months", 0), weeks=template.duration.get("weeks", 0),
                 days=template.duration.get("days", 0))


def template_activity(care: CareServices, spec: ActivitySpec, manager: Manager, start: date, end: date) -> Json:
    names = care.names
    detail: Json = {
        "code": {"coding": [{"system": names.activity_system, "code": spec.code,
                             "display": care.display(names.activity_system, spec.code) or spec.code}],
                 "text": spec.title},
        "status": "scheduled",
        "performer": [{"reference": manager.ref, "display": manager.name or manager.ref}],
        "description": spec.title,
    }
    if spec.due is not None:
        due = shift(start, months=spec.due.get("months", 0), weeks=spec.due.get("weeks", 0),
                    days=spec.due.get("days", 0))
        detail["scheduledPeriod"] = {"start": due.isoformat(), "end": due.isoformat()}
    else:
        every = spec.every or {}
        detail["status"] = "in-progress"
        detail["scheduledTiming"] = {"repeat": {
            "boundsPeriod": {"start": start.isoformat(), "end": end.isoformat()},
            "frequency": int(every.get("frequency", 1)), "period": every.get("period", 1),
            "periodUnit": str(every["unit"])}}
    return {"detail": detail}


def package_activities(care: CareServices, record: CareRecord) -> list[Json]:
    """One activity per open social care service, pointing at the service episode."""
    names = care.names
    activities = []
    for service in sorted(record.services, key=lambda s: s.id):
        if service.status not in ("active", "onhold"):
            continue
        activities.append({
            "outcomeReference": [{"reference": service.ref}],
            "detail": {
                "code": {"coding": [{"system": names.activity_system, "code": "social-care-package",
                                     "display": care.display(names.activity_system, "social-care-package")
                                     or "social-care-package"}]},
                "status": "in-progress" if service.status == "active" else "on-hold",
                "description": service_line(care, service.body),
            },
        })
    return activities


def plan_resource(care: CareServices, repo: Repository, record: CareRecord, template: Template, manager: Manager,
                  start: date, ids: dict[str, str]) -> Json:
    from .runs import read_facts

    patient = record.patient
    assert patient is not None
    end = plan_end(template, start)
    facts = read_facts(care, repo.connection, start, [patient.id]).get(patient.id)
    conditions = long_term_conditions(care, facts) if facts is not None else []
    activities = [template_activity(care, spec, manager, start, end) for spec in template.activities]
    activities += package_activities(care, record)
    plan: Json = {
        "resourceType": "CarePlan",
        "meta": {"profile": [care.names.care_plan]},
        "instantiatesUri": [template_uri(care, template)],
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": SNOMED, "code": CARE_PLAN_CATEGORY, "display": "Care plan"}]}],
        "title": f"Shared care plan: {template.title}",
        "description": "",
        "subject": {"reference": patient.ref, "display": patient_name(patient.body)},
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "created": start.isoformat(),
        "author": {"reference": manager.ref, "display": manager.name or manager.ref},
        "careTeam": [{"reference": f"CareTeam/{ids['team']}"}],
        "activity": activities,
    }
    if conditions:
        plan["addresses"] = [{"reference": f"Condition/{cid}", "display": title} for cid, title in conditions]
    plan["description"] = plan_summary(care, patient.body, plan, manager, [s.body for s in record.services])
    return plan


def template_uri(care: CareServices, template: Template) -> str:
    return f"{care.names.base}/programme-template/{template.code}"


def long_term_conditions(care: CareServices, facts: Any) -> list[tuple[str, str]]:
    """(Condition id, group title) of the patient's active long-term conditions, one per group."""
    from .engine import matching_groups

    index = care.stratifier.groups.get("long-term-conditions", {})
    groups = care.book.code_lists.get("long-term-conditions", ())
    found: dict[str, tuple[str, str]] = {}
    for problem in facts.problems:
        if problem.active:
            for group in matching_groups(index, problem, groups):
                found.setdefault(group.id, (problem.id, group.title))
    return list(found.values())


def next_review(plan: Json, today: date) -> tuple[str | None, str | None, str]:
    """(last completed review, next review due, what the next one is) from a plan's review activities."""
    last = nxt = None
    what = ""
    for activity in plan.get("activity") or ():
        detail = activity.get("detail") or {}
        if not any(c.get("code") == "review" for c in codings(detail.get("code"))):
            continue
        due = (detail.get("scheduledPeriod") or {}).get("start")
        if not due:
            continue
        if detail.get("status") == "completed":
            last = max(last or due, due)
        elif detail.get("status") not in ("cancelled", "stopped", "entered-in-error") and (nxt is None or due < nxt):
            nxt, what = due, str(detail.get("description", ""))
    return last, nxt, what


def plan_summary(care: CareServices, patient: Json, plan: Json, manager: Manager | None, services: list[Json],
                 today: date | None = None) -> str:
    """The plain-text summary a clinician reads in A&E at 3 am."""
    start = (plan.get("period") or {}).get("start", "?")
    end = (plan.get("period") or {}).get("end")
    title = str(plan.get("title", "")).removeprefix("Shared care plan: ")
    lines = [f"{patient_name(patient)} is case-managed ({title}) since {start}" + (f", until {end}" if end else "")
             + "."]
    if manager is not None:
        contact = ", ".join(p for p in (manager.name, manager.role_text(care), manager.telephone) if p)
        lines.append(f"Case manager: {contact}.")
    conditions = [a.get("display") for a in plan.get("addresses") or () if a.get("display")]
    if conditions:
        lines.append("Long-term conditions: " + "; ".join(str(c).lower() for c in conditions) + ".")
    open_services = [s for s in services if s.get("status") in ("active", "onhold")]
    if open_services:
        lines.append("Social care: " + "; ".join(service_line(care, s) for s in open_services) + ".")
    else:
        lines.append("Social care: no package of care.")
    _last, nxt, what = next_review(plan, today or date.min)
    if nxt:
        lines.append(f"Next review {nxt}: {what}.")
    lines.append("On admission: tell the case manager, who joins discharge planning; the full plan is in the "
                 "shared care record.")
    return " ".join(lines)


def flag_resource(care: CareServices, patient: Stored, template: Template, manager: Manager, start: date,
                  ids: dict[str, str]) -> Json:
    names = care.names
    contact = ", ".join(p for p in (manager.name, manager.role_text(care), manager.telephone) if p)
    return {
        "resourceType": "Flag",
        "meta": {"profile": [names.flag]},
        "identifier": [{"system": names.alert_id, "value": f"episode-{ids['episode']}"}],
        "extension": [{"url": FLAG_DETAIL, "valueReference": {"reference": f"EpisodeOfCare/{ids['episode']}"}}],
        "status": "active",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                  "code": "admin", "display": "Administrative"}]}],
        "code": {"coding": [{"system": names.alert_system, "code": "case-managed", "display": "Case-managed"}],
                 "text": f"Case-managed ({template.title}): contact {contact}"},
        "subject": {"reference": patient.ref, "display": patient_name(patient.body)},
        "period": {"start": start.isoformat()},
        "author": {"reference": manager.ref, "display": manager.name or manager.ref},
    }


def assessment_task(care: CareServices, patient: Stored, manager: Manager, start: date, due: date | None,
                    ids: dict[str, str]) -> Json:
    names = care.names
    task: Json = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent" if due else "routine",
        "code": {"coding": [{"system": names.task_system, "code": ASSESSMENT,
                             "display": "Single assessment of health and social care needs"}]},
        "description": f"Assess {patient_name(patient.body)}: the single assessment of health and social care needs"
                       + (f", due by {due.isoformat()} (two working days from screening)" if due else ""),
        "focus": {"reference": f"EpisodeOfCare/{ids['episode']}"},
        "for": {"reference": patient.ref, "display": patient_name(patient.body)},
        "authoredOn": iso_now(),
        "lastModified": iso_now(),
        "owner": {"reference": manager.ref, "display": manager.name or manager.ref},
    }
    if due is not None:
        task["restriction"] = {"period": {"end": due.isoformat()}}
    return task


# ---------------------------------------------------------------- changes

def refresh_plan(care: CareServices, repo: Repository, patient_id: str) -> bool:
    """Bring the active shared care plan's package activities and summary up to date; True if it changed."""
    record = load_record(care, repo.connection, patient_id)
    plan = record.plan_of(record.episode)
    if plan is None or record.patient is None:
        return False
    body = dict(plan.body)
    names = care.names
    kept = [a for a in body.get("activity") or ()
            if not has_code((a.get("detail") or {}).get("code"), names.activity_system, "social-care-package")]
    body["activity"] = kept + package_activities(care, record)
    manager = None
    author = (body.get("author") or {}).get("reference")
    if isinstance(author, str) and author.startswith("PractitionerRole/"):
        manager = manager_of(repo, author)
    body["description"] = plan_summary(care, record.patient.body, body, manager, [s.body for s in record.services])
    if body == plan.body:
        return False
    repo.update("CarePlan", plan.id, body)
    return True


def activate_due(care: CareServices, repo: Repository, day: date) -> int:
    """Activate the planned programme episodes whose start date has come; returns how many."""
    done = 0
    for episode in programme_episodes(care, repo):
        start = parse_day((episode.body.get("period") or {}).get("start"))
        if episode.status != "planned" or start is None or start > day:
            continue
        history = [dict(h) for h in episode.body.get("statusHistory") or ()]
        for entry in history:
            entry.setdefault("period", {}).setdefault("end", start.isoformat())
        history.append({"status": "active", "period": {"start": start.isoformat()}})
        repo.update("EpisodeOfCare", episode.id, {**episode.body, "status": "active", "statusHistory": history})
        done += 1
    return done


def discharge(care: CareServices, repo: Repository, patient_id: str, day: date, reason: str | None
              ) -> StoredResource:
    """Discharge from the programme: episode finished, alert inactive, plan completed, team inactive; the
    episode as stored."""
    record = load_record(care, repo.connection, patient_id)
    episode = record.episode
    if record.patient is None:
        raise not_found(f"Patient/{patient_id} is not known")
    if episode is None:
        raise business_rule(f"{patient_name(record.patient.body)} is not case-managed")
    body = dict(episode.body)
    history = [dict(h) for h in body.get("statusHistory") or ()]
    for entry in history:
        entry.setdefault("period", {}).setdefault("end", day.isoformat())
    history.append({"status": "finished", "period": {"start": day.isoformat()}})
    body.update(status="finished", statusHistory=history, period={**body.get("period", {}), "end": day.isoformat()})
    finished = repo.update("EpisodeOfCare", episode.id, body).stored
    episode_ref = episode.ref
    for flag in record.flags:
        detail = next((e.get("valueReference", {}).get("reference") for e in flag.body.get("extension") or ()
                       if e.get("url") == FLAG_DETAIL), None)
        if flag.status == "active" and detail == episode_ref:
            repo.update("Flag", flag.id, {**flag.body, "status": "inactive",
                                          "period": {**flag.body.get("period", {}), "end": day.isoformat()}})
    team_refs = {t.get("reference") for t in body.get("team") or ()}
    for plan in record.plans:
        if plan.status == "active" and {c.get("reference") for c in plan.body.get("careTeam") or ()} & team_refs:
            note = [*plan.body.get("note", []), {"text": f"Discharged from the programme on {day.isoformat()}"
                                                         + (f": {reason}" if reason else "")}]
            repo.update("CarePlan", plan.id, {**plan.body, "status": "completed", "note": note})
    for team in record.teams:
        if f"CareTeam/{team.id}" in team_refs and team.status == "active":
            repo.update("CareTeam", team.id, {**team.body, "status": "inactive",
                                              "period": {**team.body.get("period", {}), "end": day.isoformat()}})
    return finished


def caseload_list(care: CareServices, repo: Repository, role_id: str, today: date) -> Json:
    """A case manager's caseload as a List: active patients, with the capacity figures in a note."""
    manager = manager_of(repo, f"PractitionerRole/{role_id}")
    settings = care.book.settings
    load = caseloads(care, repo, today).get(manager.ref, Load(manager.ref))
    episodes = [e for e in programme_episodes(care, repo, reached=True)
                if (e.body.get("careManager") or {}).get("reference") == manager.ref and e.status in ("active",
                                                                                                      "planned")]
    entries = []
    for episode in sorted(episodes, key=lambda e: str((e.body.get("period") or {}).get("start", ""))):
        patient = episode.body.get("patient") or {}
        entries.append({"item": {"reference": str(patient.get("reference")), **(
            {"display": patient["display"]} if patient.get("display") else {})},
            "date": str((episode.body.get("period") or {}).get("start", "")) or None,
            "flag": {"text": f"{episode.status}: EpisodeOfCare/{episode.id}"}})
    for item in entries:
        if item["date"] is None:
            del item["date"]
    note = (f"{len(load.active)} active of a caseload of {settings.caseload}; {len(load.new_this_month)} new this "
            f"month of {settings.new_per_month}; {max(0, settings.caseload - len(load.active))} places free")
    result: Json = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "title": f"Caseload of {manager.name or manager.ref}",
        "code": {"text": "Caseload"},
        "source": {"reference": manager.ref},
        "date": iso_now(),
        "note": [{"text": note}],
        "entry": entries,
    }
    if not entries:
        del result["entry"]
        result["emptyReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                             "code": "nilknown"}], "text": "no active patients"}
    return result
