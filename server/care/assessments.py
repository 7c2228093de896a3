"""RiskAssessments: one current assessment per patient and rule set or measure, written only on change."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from ..store.repository import Repository, content_of
from .engine import Result, met_criteria
from .evidence import patient_of
from .reads import stream
from .rulesets import RuleSet

if TYPE_CHECKING:
    from .service import CareServices

Json = dict[str, Any]
NAMESPACE = uuid.UUID("5b0f6a52-3f0e-4d8e-9a57-2a51c1a9e0c4")
OUTCOME = "Emergency admission to hospital"


def assessment_id(patient_id: str, method: str) -> str:
    """The id of a patient's current assessment under a method (the same every run)."""
    return str(uuid.uuid5(NAMESPACE, f"{patient_id}|{method}"))


@dataclass(frozen=True)
class Current:
    """A stored assessment: its id and parsed body."""

    id: str
    body: Json

    @property
    def met(self) -> set[str]:
        predictions = self.body.get("prediction") or [{}]
        return met_criteria(str(predictions[0].get("rationale", "")))

    @property
    def tier(self) -> str:
        predictions = self.body.get("prediction") or [{}]
        codings = (predictions[0].get("qualitativeRisk") or {}).get("coding") or [{}]
        return str(codings[0].get("code", ""))


@dataclass(frozen=True)
class Change:
    """An assessment to create or update, with what it replaces."""

    patient: str
    result: Result
    resource: Json
    previous: Current | None

    @property
    def newly_met(self) -> set[str]:
        before = self.previous.met if self.previous is not None else set()
        return set(self.result.met) - before


class AssessmentWriter:
    """Builds RiskAssessments from results and writes the ones that changed."""

    def __init__(self, care: CareServices) -> None:
        self.care = care
        self.names = care.names
        self.system = care.names.assessment_id

    def resource(self, patient_id: str, result: Result, day: date) -> Json:
        method = result.method
        system = self.names.rule_set_system if isinstance(method, RuleSet) else self.names.measure_system
        tier_display = self.care.display(self.names.tier_system, result.tier)
        tier_coding: Json = {"system": self.names.tier_system, "code": result.tier}
        if tier_display:
            tier_coding["display"] = tier_display
        prediction: Json = {}
        if result.score is not None:
            prediction["extension"] = [{"url": self.names.risk_score, "valueDecimal": result.score}]
        prediction["outcome"] = {"text": OUTCOME}
        prediction["qualitativeRisk"] = {"coding": [tier_coding]}
        prediction["rationale"] = result.rationale
        return {
            "resourceType": "RiskAssessment",
            "id": assessment_id(patient_id, method.code),
            "meta": {"profile": [self.names.risk_assessment]},
            "identifier": [{"system": self.system, "value": f"{patient_id}:{method.code}"}],
            "status": "final",
            "method": {"coding": [{"system": system, "version": method.version, "code": method.code,
                                   "display": method.title}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "occurrenceDateTime": day.isoformat(),
            "basis": [{"reference": ref} for ref in result.basis],
            "prediction": [prediction],
        }

    def current(self, connection: Connection, patients: list[str] | None = None,
                batch: int = 0) -> dict[tuple[str, str], Current]:
        """The stored assessments of some patients (or everyone), by (patient id, method code)."""
        found: dict[tuple[str, str], Current] = {}
        for resource_id, text in stream(connection, "RiskAssessment", patients=patients, batch=batch):
            body = orjson.loads(text)
            for identifier in body.get("identifier") or ():
                if identifier.get("system") == self.system:
                    patient, _, method = str(identifier.get("value", "")).rpartition(":")
                    if patient and patient == patient_of(body):
                        found[(patient, method)] = Current(resource_id, body)
        return found

    def plan(self, patient_id: str, results: Iterable[Result], current: dict[tuple[str, str], Current],
             day: date) -> list[Change]:
        """The changes a patient's results make: new findings, and changed or withdrawn stored ones."""
        changes = []
        for result in results:
            previous = current.get((patient_id, result.method.code))
            if previous is None and not result.found:
                continue
            resource = self.resource(patient_id, result, day)
            if previous is not None and unchanged(previous.body, resource):
                continue
            changes.append(Change(patient_id, result, resource, previous))
        return changes

    def apply(self, repo: Repository, changes: list[Change]) -> tuple[int, int]:
        """Write changes (re-checking the stored versions under lock); returns (created, updated)."""
        keys = [("RiskAssessment", change.resource["id"]) for change in changes]
        repo.prefetch_current(keys)
        created = updated = 0
        for change in changes:
            resource = change.resource
            row = repo.locked.get(("RiskAssessment", resource["id"]))
            if row is None:
                repo.locked.pop(("RiskAssessment", resource["id"]), None)
                repo.create(resource, resource_type="RiskAssessment", assigned_id=resource["id"])
                created += 1
                continue
            if not row[3] and row[4] is not None and unchanged(orjson.loads(row[4]), resource):
                repo.locked.pop(("RiskAssessment", resource["id"]), None)
                continue
            repo.update("RiskAssessment", resource["id"], resource)
            updated += 1
        return created, updated


def unchanged(stored: Json, resource: Json) -> bool:
    """Whether a stored assessment says the same as a new one (its date apart)."""
    candidate = {**resource, "id": stored.get("id"), "occurrenceDateTime": stored.get("occurrenceDateTime")}
    return content_of(stored) == content_of(candidate)
