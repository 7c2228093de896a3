"""Case finding: the ranked list of people a rule set finds, within the team's capacity."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson

from ..fhir.outcome import bad_request
from ..store.repository import Repository
from .calendar import add_months, iso_now, parse_day
from .engine import met_criteria
from .evidence import codings, patient_of
from .names import LIST_ORDER, NHS_NUMBER
from .programme import case_managers, caseloads, programme_episodes
from .reads import chunks, stream
from .record import SCREEN, has_code, patient_name
from .scope import resolve_scope

if TYPE_CHECKING:
    from .service import CareServices

Json = dict[str, Any]
TIER_RANK = {"very-high": 0, "high": 1, "moderate": 2, "low": 3}


@dataclass
class Candidate:
    """A person the rule set finds, with what ranks them."""

    patient: str
    name: str
    nhs: str
    assessment: str
    tier: str
    priority: float
    criteria: int
    rationale: str
    hfrs: float = 0.0
    efi: float = 0.0

    def key(self) -> tuple[Any, ...]:
        return (self.priority, TIER_RANK.get(self.tier, 9), -self.criteria, -self.hfrs, -self.efi, self.name,
                self.patient)


@dataclass
class Capacity:
    """Places on the caseloads: free, taken this month, kept for newly eligible patients, offered now."""

    offered: int
    given: bool
    managers: int = 0
    free: int = 0
    reserved: int = 0

    def describe(self, settings: Any) -> str:
        if self.given:
            return f"capacity {self.offered} (as asked)"
        return (f"capacity {self.offered}: {self.free} places free on {self.managers} case managers' caseloads "
                f"(at most {settings.caseload} active and {settings.new_per_month} new a month each), "
                f"{self.reserved} kept for newly eligible patients")


def score_of(body: Json) -> float:
    for prediction in body.get("prediction") or ():
        for extension in prediction.get("extension") or ():
            if isinstance(extension.get("valueDecimal"), (int, float)):
                return float(extension["valueDecimal"])
    return 0.0


def tier_of(body: Json) -> str:
    for prediction in body.get("prediction") or ():
        for coding in codings(prediction.get("qualitativeRisk")):
            return str(coding.get("code", ""))
    return ""


def capacity_now(care: CareServices, repo: Repository, today: date, given: int | None) -> Capacity:
    if given is not None:
        return Capacity(given, True)
    settings = care.book.settings
    loads = caseloads(care, repo, today)
    managers = case_managers(care, repo)
    free = 0
    for manager in managers:
        load = loads.get(f"PractitionerRole/{manager.id}")
        active = len(load.active) if load else 0
        new = len(load.new_this_month) if load else 0
        free += max(0, min(settings.caseload - active, settings.new_per_month - new))
    reserved = math.ceil(free * settings.reserve) if free else 0
    return Capacity(max(0, free - reserved), False, len(managers), free, reserved)


def case_finding(care: CareServices, repo: Repository, *, rule_set: str | None, practice: str | None,
                 locality: str | None, capacity: int | None, today: date) -> Json:
    """A List of the people to offer case management, best first, as many as capacity allows."""
    code = rule_set or care.book.settings.default_rule_set
    chosen = care.book.rule_sets.get(code)
    if chosen is None:
        raise bad_request(f"Unknown rule set {code!r}; active: {', '.join(sorted(care.book.rule_sets))}", "ruleSet")
    scope = resolve_scope(care, repo, practice, locality)
    names = care.names
    settings = care.book.settings
    tokens: list[tuple[str, list[str] | None, str | None]] = [
        ("method", [code], names.rule_set_system), ("risk", list(settings.eligible_tiers), names.tier_system)]
    found: dict[str, tuple[str, Json]] = {}
    for resource_id, text in stream(repo.connection, "RiskAssessment", tokens=tokens, reach=repo.reach):
        body = orjson.loads(text)
        patient = patient_of(body)
        if patient is not None and tier_of(body) in settings.eligible_tiers:
            found[patient] = (resource_id, body)
    managed = {str((e.body.get("patient") or {}).get("reference", "")).split("/")[-1]
               for e in programme_episodes(care, repo) if e.status in ("planned", "waitlist", "active", "onhold")}
    declined = declined_patients(care, repo, add_months(today, -settings.declined_months))
    counts = {"case-managed": 0, "declined": 0, "deceased": 0}
    candidates: list[Candidate] = []
    patients: dict[str, Json] = {}
    for part in chunks(sorted(found)):
        for resource_id, text in stream(repo.connection, "Patient", ids=part, reach=repo.reach):
            patients[resource_id] = orjson.loads(text)
    for patient_id, (assessment_id, body) in found.items():
        patient = patients.get(patient_id)
        if patient is None or not scope.holds(patient):
            continue
        if patient.get("deceasedDateTime") or patient.get("deceasedBoolean"):
            counts["deceased"] += 1
            continue
        if patient_id in managed:
            counts["case-managed"] += 1
            continue
        if patient_id in declined:
            counts["declined"] += 1
            continue
        prediction = (body.get("prediction") or [{}])[0]
        nhs = next((str(i.get("value")) for i in patient.get("identifier") or () if i.get("system") == NHS_NUMBER), "")
        candidates.append(Candidate(patient_id, patient_name(patient), nhs, assessment_id, tier_of(body),
                                    score_of(body) or 99.0, len(met_criteria(str(prediction.get("rationale", "")))),
                                    str(prediction.get("rationale", ""))))
    add_measures(care, repo, candidates)
    candidates.sort(key=Candidate.key)
    room = capacity_now(care, repo, today, capacity)
    listed = candidates[:room.offered]
    note = (f"{chosen.title} (version {chosen.version}) for {scope.label}: {len(candidates)} eligible, "
            f"{len(listed)} listed within {room.describe(settings)}. Left out: {counts['case-managed']} already "
            f"case-managed, {counts['declined']} declined in the last {settings.declined_months} months, "
            f"{counts['deceased']} deceased.")
    result: Json = {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": f"Case finding: {chosen.title}, {scope.label}",
        "code": {"text": "Case-finding list"},
        "date": iso_now(),
        "orderedBy": {"coding": [{"system": LIST_ORDER, "code": "priority", "display": "Sorted by Priority"}]},
        "note": [{"text": note}],
        "entry": [entry(care, candidate) for candidate in listed],
    }
    if not listed:
        del result["entry"]
        result["emptyReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                             "code": "nilknown" if candidates else "notstarted"}],
                                 "text": "no capacity" if candidates else "nobody eligible"}
    return result


def entry(care: CareServices, candidate: Candidate) -> Json:
    names = care.names
    measures = f"; HFRS {candidate.hfrs:g}; eFI {candidate.efi:g}" if candidate.hfrs or candidate.efi else ""
    return {
        "flag": {"coding": [{"system": names.tier_system, "code": candidate.tier,
                             "display": care.display(names.tier_system, candidate.tier) or candidate.tier}],
                 "text": f"RiskAssessment/{candidate.assessment}: {candidate.rationale}{measures}"},
        "item": {"reference": f"Patient/{candidate.patient}",
                 "display": f"{candidate.name}" + (f" (NHS {candidate.nhs})" if candidate.nhs else "")},
    }


def add_measures(care: CareServices, repo: Repository, candidates: list[Candidate]) -> None:
    """Attach the candidates' HFRS and eFI scores (they break ties in the ranking)."""
    by_patient = {c.patient: c for c in candidates}
    measures = [m.code for m in care.book.measures.values()]
    if not by_patient or not measures:
        return
    tokens: list[tuple[str, list[str] | None, str | None]] = [("method", measures, care.names.measure_system)]
    for part in chunks(sorted(by_patient)):
        for _id, text in stream(repo.connection, "RiskAssessment", patients=part, tokens=tokens):
            body = orjson.loads(text)
            candidate = by_patient.get(patient_of(body) or "")
            code = next((str(c.get("code")) for c in codings(body.get("method"))), "")
            if candidate is not None:
                kind = care.book.measures.get(code)
                if kind is not None and kind.score_kind == "hfrs":
                    candidate.hfrs = score_of(body)
                elif kind is not None:
                    candidate.efi = score_of(body)


def declined_patients(care: CareServices, repo: Repository, since: date) -> set[str]:
    names = care.names
    tokens: list[tuple[str, list[str] | None, str | None]] = [
        ("code", [SCREEN], names.task_system), ("business-status", ["declined"], names.screening_system)]
    found = set()
    for _id, text in stream(repo.connection, "Task", tokens=tokens):
        body = orjson.loads(text)
        day = parse_day((body.get("executionPeriod") or {}).get("end") or body.get("lastModified"))
        if day is not None and day >= since and has_code(body.get("businessStatus"), names.screening_system,
                                                         "declined"):
            patient = patient_of(body, "for")
            if patient:
                found.add(patient)
    return found
