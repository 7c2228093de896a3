"""Outcomes for commissioners: a MeasureReport of use before and after enrolment, caseloads and timeliness."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from ..fhir.outcome import bad_request
from ..store.repository import Repository
from .calendar import add_months, iso_now, parse_day
from .evidence import PatientFacts
from .names import MEASURE_POPULATION
from .programme import found_by, programme_episodes
from .reads import chunks, stream
from .record import ASSESSMENT, SCREEN, Stored, has_code
from .runs import read_facts
from .scope import resolve_scope

if TYPE_CHECKING:
    from .service import CareServices

Json = dict[str, Any]
GBP = {"unit": "GBP", "system": "urn:iso:std:iso:4217", "code": "GBP"}
WINDOW = "after-enrolment window"  # the stratifier and stratum component that say whether it has ended


@dataclass
class Use:
    """Use of services in one window."""

    admissions: int = 0
    bed_days: int = 0
    attendances: int = 0
    hours: float = 0.0
    cost: float = 0.0


@dataclass
class PatientOutcome:
    """One enrolled patient's figures."""

    patient: str
    episode: Stored
    enrolled: date
    manager: str
    before: Use = field(default_factory=Use)
    after: Use = field(default_factory=Use)
    after_days: int = 0  # the days of the 12 months after enrolment seen: up to the period's end and today
    days_to_assessment: int | None = None

    @property
    def after_ended(self) -> bool:
        """Whether the whole 12 months after enrolment lie within the period and the past."""
        return self.after_days >= (add_months(self.enrolled, 12) - self.enrolled).days

    def window(self) -> str:
        """The after-enrolment window as a report shows it."""
        if self.after_ended:
            return "complete"
        return f"incomplete: {self.after_days} of {(add_months(self.enrolled, 12) - self.enrolled).days} days"


def overlap_days(start: date | None, end: date | None, low: date, high: date) -> int:
    """Days of [start, end] (end open = still going up to `high`) inside [low, high)."""
    if start is None:
        return 0
    first = max(start, low)
    last = min(end + timedelta(days=1) if end else high, high)
    return max(0, (last - first).days)


def use_in(facts: PatientFacts, low: date, high: date) -> Use:
    """Emergency admissions (and their bed days), A&E attendances and social care in [low, high)."""
    use = Use()
    for admission in facts.admissions:
        if admission.emergency and low <= admission.start < high:
            use.admissions += 1
            use.bed_days += max(0, ((admission.end or high) - admission.start).days)
    use.attendances = sum(1 for _id, day in facts.attendances if low <= day < high)
    for service in facts.services:
        days = overlap_days(service.start, service.end, low, high)
        if days and service.status != "entered-in-error":
            if service.units is not None and service.unit.lower() == "hours":
                use.hours += service.units * days / 7
            if service.weekly_cost is not None:
                use.cost += service.weekly_cost * days / 7
    return use


def outcomes(care: CareServices, repo: Repository, *, start: date, end: date, practice: str | None,
             locality: str | None, programme: str | None) -> Json:
    """The MeasureReport for enrolments active in [start, end] (inclusive), within the scope."""
    if end < start:
        raise bad_request("periodEnd is before periodStart", "periodEnd")
    scope = resolve_scope(care, repo, practice, locality)
    stop = min(end, care.today()) + timedelta(days=1)  # nothing is counted after the period, nor after today
    names = care.names
    chosen: dict[str, Stored] = {}
    for episode in programme_episodes(care, repo, reached=True):  # the people in the caller's reach only
        if episode.status in ("entered-in-error", "cancelled"):
            continue
        if programme and not any(has_code(t, names.programme_system, programme) for t in episode.body.get("type")
                                 or ()):
            continue
        period = episode.body.get("period") or {}
        began, ended = parse_day(period.get("start")), parse_day(period.get("end"))
        if began is None or began > end or (ended is not None and ended < start):
            continue
        patient = str((episode.body.get("patient") or {}).get("reference", "")).split("/")[-1]
        earlier = chosen.get(patient)
        if earlier is None or str(period.get("start")) > str((earlier.body.get("period") or {}).get("start")):
            chosen[patient] = episode
    patients: dict[str, Json] = {}
    for part in chunks(sorted(chosen)):
        for resource_id, text in stream(repo.connection, "Patient", ids=part, reach=repo.reach):
            patients[resource_id] = orjson.loads(text)
    chosen = {p: e for p, e in chosen.items() if p in patients and scope.holds(patients[p])}
    facts = read_facts(care, repo.connection, end, sorted(chosen)) if chosen else {}
    tasks = tasks_of(repo, sorted(chosen))
    results: list[PatientOutcome] = []
    for patient, episode in sorted(chosen.items()):
        enrolled = parse_day((episode.body.get("period") or {}).get("start"))
        assert enrolled is not None
        manager = str((episode.body.get("careManager") or {}).get("reference", ""))
        found = facts.get(patient) or PatientFacts(patient)
        until = max(enrolled, min(add_months(enrolled, 12), stop))
        outcome = PatientOutcome(patient, episode, enrolled, manager,
                                 use_in(found, add_months(enrolled, -12), enrolled), use_in(found, enrolled, until),
                                 (until - enrolled).days)
        outcome.days_to_assessment = days_to_assessment(care, tasks.get(patient, []), episode)
        results.append(outcome)
    return report(care, results, start, end, scope.label, programme)


def tasks_of(repo: Repository, patients: list[str]) -> dict[str, list[Json]]:
    found: dict[str, list[Json]] = {}
    for _id, text in stream(repo.connection, "Task", patients=patients):
        body = orjson.loads(text)
        patient = str((body.get("for") or {}).get("reference", "")).split("/")[-1]
        found.setdefault(patient, []).append(body)
    return found


def days_to_assessment(care: CareServices, tasks: list[Json], episode: Stored) -> int | None:
    """Days from identification (the screening Task raised, else enrolment) to the completed assessment."""
    system = care.names.task_system
    assessed = [t for t in tasks if has_code(t.get("code"), system, ASSESSMENT) and t.get("status") == "completed"
                and (t.get("focus") or {}).get("reference") == episode.ref]
    if not assessed:
        return None
    done = min(parse_day((t.get("executionPeriod") or {}).get("end") or t.get("lastModified")) or date.max
               for t in assessed)
    screens = [t for t in tasks if has_code(t.get("code"), system, SCREEN) and found_by(t) in ("incidence",
                                                                                                "case-finding")]
    identified = min((parse_day(t.get("authoredOn")) or date.max for t in screens), default=None)
    if identified is None or identified == date.max:
        identified = parse_day((episode.body.get("period") or {}).get("start"))
    if identified is None or done == date.max:
        return None
    return (done - identified).days


def code(care: CareServices, key: str, text: str) -> Json:
    return {"coding": [{"system": care.names.outcome_system, "code": key, "display": text}], "text": text}


def population(count: int) -> list[Json]:
    return [{"code": {"coding": [{"system": MEASURE_POPULATION, "code": "initial-population"}]}, "count": count}]


def score(value: float | None, quantity: Json | None) -> Json:
    """A measureScore: the value rounded, with its unit; empty for a mean over no one."""
    if value is None:
        return {}
    return {"measureScore": {"value": round(value, 2), **(quantity or {})}}


def group(care: CareServices, key: str, text: str, total: float | None, per: list[tuple[str, float]], count: int,
          quantity: Json | None = None, label: str = "patient") -> Json:
    """One group: its code, population and score (none when `total` is a mean over no one), and a stratum per
    patient or case manager."""
    entry: Json = {"code": code(care, key, text), "population": population(count), **score(total, quantity)}
    if per:
        entry["stratifier"] = [{"code": [{"text": label}], "stratum": [
            {"value": {"text": reference}, **score(value, quantity)} for reference, value in per]}]
    return entry


def after_group(care: CareServices, key: str, text: str, results: list[PatientOutcome], figure: str,
                quantity: Json | None = None) -> Json:
    """A group of the 12 months after enrolment: each patient's stratum says whether their window has ended
    (an incomplete one counts what is known so far, never the rest as zero), and a second stratifier gives the
    figures of the ended and the incomplete windows apart."""
    values = [(r, getattr(r.after, figure)) for r in results]
    entry = group(care, key, text, sum(v for _r, v in values), [], len(results), quantity)
    if not values:
        return entry
    patients = [{"value": {"text": f"Patient/{r.patient}"},
                 "component": [{"code": {"text": WINDOW}, "value": {"text": r.window()}}], **score(v, quantity)}
                for r, v in values]
    windows = []
    for state, ended in (("complete", True), ("incomplete", False)):
        chosen = [v for r, v in values if r.after_ended == ended]
        if chosen:
            windows.append({"value": {"text": state}, "population": population(len(chosen)),
                            **score(sum(chosen), quantity)})
    entry["stratifier"] = [{"code": [{"text": "patient"}], "stratum": patients},
                           {"code": [{"text": WINDOW}], "stratum": windows}]
    return entry


def report(care: CareServices, results: list[PatientOutcome], start: date, end: date, scope: str,
           programme: str | None) -> Json:
    count = len(results)
    groups = [group(care, "actively-case-managed", "Patients actively case-managed in the period", count,
                    [], count)]
    days = {"unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    hours = {"unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}
    figures = (("emergency-admissions", "Emergency admissions", "admissions", None),
               ("emergency-bed-days", "Emergency bed days", "bed_days", days),
               ("ae-attendances", "A&E attendances", "attendances", None),
               ("social-care-hours", "Social care hours", "hours", hours),
               ("social-care-cost", "Social care cost", "cost", GBP))
    for key, name, figure, quantity in figures:
        before = [(f"Patient/{r.patient}", getattr(r.before, figure)) for r in results]
        groups.append(group(care, f"{key}-before", f"{name} in the 12 months before enrolment",
                            sum(v for _p, v in before), before, count, quantity))
    for key, name, figure, quantity in figures:
        groups.append(after_group(care, f"{key}-after", f"{name} in the 12 months after enrolment", results,
                                  figure, quantity))
    loads: dict[str, int] = {}
    for result in results:
        ended = parse_day((result.episode.body.get("period") or {}).get("end"))
        if result.manager and (ended is None or ended >= end):
            loads[result.manager] = loads.get(result.manager, 0) + 1
    mean_load = sum(loads.values()) / len(loads) if loads else None
    groups.append(group(care, "caseload", "Caseload per case manager at the end of the period (mean)", mean_load,
                        sorted(loads.items()), count, label="case-manager"))
    timed = [(f"Patient/{r.patient}", float(r.days_to_assessment)) for r in results
             if r.days_to_assessment is not None]
    mean_days = sum(d for _p, d in timed) / len(timed) if timed else None
    groups.append(group(care, "days-to-assessment", "Days from identification to assessment (mean)", mean_days,
                        timed, len(timed), days))
    text = f"Case management outcomes for {scope}" + (f", programme {programme}" if programme else "")
    return {
        "resourceType": "MeasureReport",
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(text)}</div>'},
        "status": "complete",
        "type": "summary",
        "measure": care.names.outcomes_measure,
        "date": iso_now(),
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "improvementNotation": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "decrease"}]},
        "group": groups,
    }


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

