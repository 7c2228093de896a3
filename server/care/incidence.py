"""Incidence: writes that change a patient's evidence re-stratify them at once; admissions of case-managed
patients alert their case manager; package changes refresh the shared care plan."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..store.repository import Repository, StoredResource
from .calendar import add_months, iso_now
from .evidence import codings, extension_value, patient_of, profiles_of
from .names import ADMISSION_METHOD, FLAG_DETAIL
from .programme import manager_of, refresh_plan, screening_task
from .reads import stream, with_token
from .record import ADMISSION_ALERT, OPEN_TASK, SCREEN, CareRecord, load_record, patient_name
from .runs import RUN_TASK, stratify_patients
from .service import CARE_SUBJECT
from .unitstate import PerUnit

if TYPE_CHECKING:
    from .service import CareServices

log = logging.getLogger(__name__)
Json = dict[str, Any]
EVIDENCE = frozenset({"Patient", "Condition", "Observation", "MedicationRequest", "ServiceRequest"})
IN_HOSPITAL = frozenset({"planned", "arrived", "triaged", "in-progress", "onleave"})


@dataclass
class Pending:
    """What a unit of work touched, collected as it writes."""

    patients: set[str] = field(default_factory=set)
    admissions: dict[str, str] = field(default_factory=dict)  # encounter id -> patient id
    packages: set[str] = field(default_factory=set)


def is_admission(resource: Json, names: Any) -> bool:
    """A hospital spell (inpatient class or the spell profile) with an admission method."""
    klass = resource.get("class")
    inpatient = isinstance(klass, dict) and klass.get("code") == "IMP"
    if not inpatient and names.hospital_spell not in profiles_of(resource):
        return False
    hospitalization = resource.get("hospitalization")
    return isinstance(hospitalization, dict) and bool(
        extension_value(hospitalization, ADMISSION_METHOD, "valueCodeableConcept"))


class CareListener:
    """The care package's WriteListener: cheap bookkeeping per write, the work once per unit."""

    def __init__(self, care: CareServices) -> None:
        self.care = care
        self.pending: PerUnit[Repository, Pending] = PerUnit(Pending)

    def written(self, repo: Repository, stored: StoredResource, resource: dict[str, Any] | None) -> None:
        kind = stored.type
        if resource is None or (kind not in EVIDENCE and kind not in ("Encounter", "EpisodeOfCare")):
            return
        if repo.caller.subject == CARE_SUBJECT:
            return
        if kind == "Patient":
            self.pending.of(repo).patients.add(stored.id)
            return
        if kind == "Encounter":
            if not is_admission(resource, self.care.names):
                klass = resource.get("class")
                if not (isinstance(klass, dict) and klass.get("code") == "EMER"):
                    return
            patient = patient_of(resource)
            if patient is None:
                return
            state = self.pending.of(repo)
            state.patients.add(patient)
            if resource.get("status") in IN_HOSPITAL and is_admission(resource, self.care.names):
                state.admissions[stored.id] = patient
            return
        if kind == "EpisodeOfCare":
            names = self.care.names
            if names.service_episode not in profiles_of(resource) and not extension_value(
                    resource, names.service_type_extension, "valueCodeableConcept"):
                return
            patient = patient_of(resource, "patient")
            if patient is not None:
                state = self.pending.of(repo)
                state.patients.add(patient)
                state.packages.add(patient)
            return
        patient = patient_of(resource)
        if patient is not None:
            self.pending.of(repo).patients.add(patient)

    def before_commit(self, repo: Repository) -> None:
        state = self.pending.take(repo)
        if state is None or not (state.patients or state.admissions):
            return
        repo.flush()
        care_repo = self.care.beside(repo)
        try:
            with repo.connection.begin_nested():
                self.react(care_repo, state)
                care_repo.flush()
        except Exception:  # never fail the writer's own change because of a follow-up
            care_repo.discard_pending()
            log.exception("case-management follow-up of a write failed; the write itself is kept")

    # --------------------------------------------------------------- reactions

    def react(self, repo: Repository, state: Pending) -> None:
        if state.admissions or state.packages:
            managed = self.case_managed(repo, sorted(state.packages | set(state.admissions.values())))
            for encounter_id, patient in state.admissions.items():
                if patient in managed:
                    self.admitted(repo, encounter_id)
            for patient in sorted(state.packages & managed):
                refresh_plan(self.care, repo, patient)
        if state.patients and self.prevalence_done(repo):
            self.restratify(repo, sorted(state.patients))

    def case_managed(self, repo: Repository, patients: list[str]) -> set[str]:
        """Which of the patients have a current programme episode (one query per 500 patients)."""
        names = self.care.names
        tokens: list[tuple[str, list[str] | None, str | None]] = [("type", None, names.programme_system)]
        found = set()
        for _id, text in stream(repo.connection, "EpisodeOfCare", patients=patients, tokens=tokens):
            body = orjson.loads(text)
            if body.get("status") in ("active", "planned", "onhold", "waitlist"):
                patient = patient_of(body, "patient")
                if patient:
                    found.add(patient)
        return found

    def prevalence_done(self, repo: Repository) -> bool:
        """Whether a population run has completed (incidence starts after the prevalence search)."""
        if self.care.prevalence_seen:
            return True
        names = self.care.names
        tokens: list[tuple[str, list[str] | None, str | None]] = [
            ("code", [RUN_TASK], names.task_system), ("status", ["completed"], None)]
        for _id, _body in stream(repo.connection, "Task", tokens=tokens):
            self.care.prevalence_seen = True
            return True
        return False

    def admitted(self, repo: Repository, encounter_id: str) -> None:
        """A case-managed patient is in hospital: a Flag on the admission and a Task for the case manager."""
        care = self.care
        names = care.names
        found = repo.fetch_current("Encounter", encounter_id)
        if found is None or found.deleted or found.body is None:
            return
        encounter = orjson.loads(found.body)
        patient_id = patient_of(encounter)
        if patient_id is None or encounter.get("status") not in IN_HOSPITAL:
            return
        record = load_record(care, repo.connection, patient_id)
        episode = record.episode
        if episode is None or episode.status != "active" or record.patient is None:
            return
        if with_token(repo.connection, "Flag", "identifier", [encounter_id], names.alert_id):
            return
        manager_ref = (episode.body.get("careManager") or {}).get("reference")
        if not manager_ref:
            return
        manager = manager_of(repo, manager_ref)
        who = patient_name(record.patient.body)
        start = (encounter.get("period") or {}).get("start", "")
        method = extension_value(encounter.get("hospitalization") or {}, ADMISSION_METHOD, "valueCodeableConcept")
        code = next((str(c.get("code")) for c in codings(method) if c.get("code")), "")
        kind = "an emergency admission" if code.startswith("2") else "an admission"
        provider = (encounter.get("serviceProvider") or {}).get("display") or \
            ((encounter.get("serviceProvider") or {}).get("identifier") or {}).get("value") or "hospital"
        contact = ", ".join(p for p in (manager.name, manager.role_text(care), manager.telephone) if p)
        flag = {
            "resourceType": "Flag",
            "meta": {"profile": [names.flag]},
            "identifier": [{"system": names.alert_id, "value": encounter_id}],
            "extension": [{"url": FLAG_DETAIL, "valueReference": {"reference": episode.ref}}],
            "status": "active",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                      "code": "admin", "display": "Administrative"}]}],
            "code": {"coding": [{"system": names.alert_system, "code": "case-managed", "display": "Case-managed"}],
                     "text": f"Case-managed patient in hospital ({kind} on {start[:10]}): contact the case manager "
                             f"{contact} and involve them in discharge planning"},
            "subject": {"reference": record.patient.ref, "display": who},
            "period": {"start": start or iso_now()},
            "encounter": {"reference": f"Encounter/{encounter_id}"},
            "author": {"reference": manager.ref, "display": manager.name or manager.ref},
        }
        repo.create(flag, resource_type="Flag")
        task = {
            "resourceType": "Task",
            "identifier": [{"system": names.alert_id, "value": encounter_id}],
            "status": "requested",
            "intent": "order",
            "priority": "urgent",
            "code": {"coding": [{"system": names.task_system, "code": ADMISSION_ALERT,
                                 "display": "Case-managed patient admitted"}]},
            "description": f"{who} was admitted to {provider} on {start[:10]} ({kind}). Contact the ward, share the "
                           f"care plan and join discharge planning.",
            "focus": {"reference": f"Encounter/{encounter_id}"},
            "for": {"reference": record.patient.ref, "display": who},
            "encounter": {"reference": f"Encounter/{encounter_id}"},
            "authoredOn": iso_now(),
            "lastModified": iso_now(),
            "owner": {"reference": manager.ref, "display": manager.name or manager.ref},
        }
        repo.create(task, resource_type="Task")

    def restratify(self, repo: Repository, patients: list[str]) -> None:
        """Re-stratify the patients; raise a screening Task where one newly meets a criterion."""
        care = self.care
        today = care.today()
        changes = stratify_patients(care, repo, patients, today)
        screening = set(care.book.settings.screening_rule_sets)
        newly: dict[str, list[str]] = {}
        for change in changes:
            method = change.result.method
            if method.code not in screening:
                continue
            fresh = change.newly_met
            if fresh:
                titles = [c.title for c in getattr(method, "criteria", ()) if c.id in fresh]
                newly.setdefault(change.patient, []).append(f"{method.title}: " + "; ".join(titles))
        for patient_id, reasons in newly.items():
            record = load_record(care, repo.connection, patient_id)
            if not self.may_screen(record):
                continue
            assert record.patient is not None
            focus = next((f"RiskAssessment/{c.resource['id']}" for c in changes if c.patient == patient_id
                          and c.result.method.code in screening and c.newly_met), None)
            task = screening_task(care, record.patient, found_by="incidence",
                                  reason="newly meets " + " | ".join(reasons), focus=focus)
            repo.create(task, resource_type="Task")

    def may_screen(self, record: CareRecord) -> bool:
        care = self.care
        patient = record.patient
        if patient is None or patient.body.get("deceasedDateTime") or patient.body.get("deceasedBoolean"):
            return False
        if record.episode is not None:
            return False
        names = care.names
        if record.tasks_with(SCREEN, names.task_system, OPEN_TASK):
            return False
        since = add_months(care.today(), -care.book.settings.declined_months)
        return not record.declined_since(names.task_system, names.screening_system, since)

