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
    days_to_assessment: int | None = None


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
    stop = end + timedelta(days=1)
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
        outcome = PatientOutcome(patient, episode, enrolled, manager,
                                 use_in(found, add_months(enrolled, -12), enrolled),
                                 use_in(found, enrolled, min(add_months(enrolled, 12), stop)))
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


def group(care: CareServices, key: str, text: str, total: float, per: list[tuple[str, float]], count: int,
          quantity: Json | None = None, label: str = "patient") -> Json:
    score: Json = {"value": round(total, 2)}
    if quantity:
        score.update(quantity)
    entry: Json = {"code": code(care, key, text), "population": population(count), "measureScore": score}
    if per:
        entry["stratifier"] = [{"code": [{"text": label}], "stratum": [
            {"value": {"text": reference}, "measureScore": {"value": round(value, 2), **(quantity or {})}}
            for reference, value in per]}]
    return entry


def report(care: CareServices, results: list[PatientOutcome], start: date, end: date, scope: str,
           programme: str | None) -> Json:
    count = len(results)
    groups = [group(care, "actively-case-managed", "Patients actively case-managed in the period", count,
                    [], count)]
    for when in ("before", "after"):
        label = "in the 12 months before enrolment" if when == "before" else "in the 12 months after enrolment"
        uses = [(f"Patient/{r.patient}", getattr(r, when)) for r in results]
        groups.append(group(care, f"emergency-admissions-{when}", f"Emergency admissions {label}",
                            sum(u.admissions for _p, u in uses), [(p, u.admissions) for p, u in uses], count))
        groups.append(group(care, f"emergency-bed-days-{when}", f"Emergency bed days {label}",
                            sum(u.bed_days for _p, u in uses), [(p, u.bed_days) for p, u in uses], count,
                            {"unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}))
        groups.append(group(care, f"ae-attendances-{when}", f"A&E attendances {label}",
                            sum(u.attendances for _p, u in uses), [(p, u.attendances) for p, u in uses], count))
        groups.append(group(care, f"social-care-hours-{when}", f"Social care hours {label}",
                            sum(u.hours for _p, u in uses), [(p, u.hours) for p, u in uses], count,
                            {"unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}))
        groups.append(group(care, f"social-care-cost-{when}", f"Social care cost {label}",
                            sum(u.cost for _p, u in uses), [(p, u.cost) for p, u in uses], count, GBP))
    loads: dict[str, int] = {}
    for result in results:
        ended = parse_day((result.episode.body.get("period") or {}).get("end"))
        if result.manager and (ended is None or ended >= end):
            loads[result.manager] = loads.get(result.manager, 0) + 1
    mean_load = sum(loads.values()) / len(loads) if loads else 0.0
    groups.append(group(care, "caseload", "Caseload per case manager at the end of the period (mean)", mean_load,
                        sorted(loads.items()), count, label="case-manager"))
    timed = [(f"Patient/{r.patient}", float(r.days_to_assessment)) for r in results
             if r.days_to_assessment is not None]
    mean_days = sum(d for _p, d in timed) / len(timed) if timed else 0.0
    groups.append(group(care, "days-to-assessment", "Days from identification to assessment (mean)", mean_days,
                        timed, len(timed), {"unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}))
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

