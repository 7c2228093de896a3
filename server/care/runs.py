"""Population runs: stratify everyone (CLI, `$stratify`), in batches, in the background with progress."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from ..fhir.searchparams import param_key
from ..store.db import advisory_lock
from .assessments import AssessmentWriter, Change
from .calendar import iso_now
from .evidence import EVIDENCE_TYPES, FactReader, PatientFacts
from .names import ACT_CODE
from .reads import chunks, stream
from .rulesets import Measure, RuleSet

if TYPE_CHECKING:
    from ..store.repository import Repository
    from .service import CareServices

log = logging.getLogger(__name__)
STRATIFY_LOCK = param_key("care", "stratify")
RUN_TASK = "stratification-run"
Json = dict[str, Any]
Progress = Callable[[int, int, "RunSummary"], None]


@dataclass
class RunSummary:
    """What a run did."""

    as_of: date
    methods: list[str]
    patients: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    seconds: float = 0.0
    read_seconds: float = 0.0
    task: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (f"stratified {self.processed} of {self.patients} patients as of {self.as_of.isoformat()} under "
                f"{', '.join(self.methods)}: {self.created} assessments created, {self.updated} updated, "
                f"in {self.seconds:.1f} s ({self.rate:.0f} patients/s; reading {self.read_seconds:.1f} s)")


def read_facts(care: CareServices, connection: Connection, as_of: date,
               patients: list[str] | None = None, batch: int = 0) -> dict[str, PatientFacts]:
    """The facts of some patients (or everyone) from the current versions of the evidence types."""
    reader = FactReader(care.names, as_of)
    for resource_type in EVIDENCE_TYPES:
        tokens = [("class", ["IMP", "EMER"], ACT_CODE)] if resource_type == "Encounter" else None
        if resource_type == "Patient":
            rows = stream(connection, "Patient", ids=patients, batch=batch)
        else:
            rows = stream(connection, resource_type, patients=patients, tokens=tokens, batch=batch)
        for resource_id, text in rows:
            reader.add(resource_type, resource_id, orjson.loads(text))
    return reader.finish()


def select_methods(care: CareServices, codes: list[str] | None) -> list[RuleSet | Measure]:
    """The rule sets and measures named (all of them when none are)."""
    if not codes:
        return care.book.methods
    chosen = []
    for code in codes:
        method = care.book.method(code)
        if method is None:
            raise KeyError(code)
        chosen.append(method)
    return chosen


def stratify_patients(care: CareServices, repo: Repository, patients: list[str], as_of: date) -> list[Change]:
    """Re-stratify some patients inside a unit of work (incidence); returns the changes written."""
    advisory_lock(repo.connection, STRATIFY_LOCK)
    facts = read_facts(care, repo.connection, as_of, patients)
    writer = AssessmentWriter(care)
    current = writer.current(repo.connection, patients)
    changes: list[Change] = []
    for patient in patients:
        found = facts.get(patient)
        if found is None or not found.known or found.deceased:
            continue
        changes.extend(writer.plan(patient, care.stratifier.assess(found, as_of), current, as_of))
    if changes:
        writer.apply(repo, changes)
    return changes


class PopulationRun:
    """Stratifies every patient: reads the evidence in bulk, computes in memory, writes changes in batches."""

    def __init__(self, care: CareServices, as_of: date, methods: list[str] | None = None, batch: int = 2000,
                 progress: Progress | None = None) -> None:
        self.care = care
        self.as_of = as_of
        self.methods = select_methods(care, methods)
        self.batch = batch
        self.progress = progress
        self.summary = RunSummary(as_of, [m.code for m in self.methods])

    def execute(self) -> RunSummary:
        started = time.perf_counter()
        care = self.care
        writer = AssessmentWriter(care)
        with care.store.database.writer.connect() as connection, connection.begin():
            facts = read_facts(care, connection, self.as_of, batch=5000)
            current = writer.current(connection, batch=5000)
        self.summary.read_seconds = time.perf_counter() - started
        patients = sorted(p for p, f in facts.items() if f.known)
        self.summary.patients = len(patients)
        self.report()
        for part in chunks(patients, self.batch):
            changes: list[Change] = []
            for patient in part:
                found = facts[patient]
                if found.deceased:
                    continue
                results = care.stratifier.assess(found, self.as_of, self.methods)
                changes.extend(writer.plan(patient, results, current, self.as_of))
            if changes:
                with care.unit() as repo:
                    advisory_lock(repo.connection, STRATIFY_LOCK)
                    created, updated = writer.apply(repo, changes)
                self.summary.created += created
                self.summary.updated += updated
            self.summary.processed += len(part)
            self.summary.seconds = time.perf_counter() - started
            self.report()
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.summary.processed, self.summary.patients, self.summary)


class RunManager:
    """Population runs of this process, each recorded as a Task (status and progress to poll)."""

    def __init__(self, care: CareServices) -> None:
        self.care = care
        self.threads: dict[str, threading.Thread] = {}

    def task(self, summary: RunSummary, status: str, task_id: str, started: str, note: str = "") -> Json:
        names = self.care.names
        outputs = [("patients", summary.patients), ("processed", summary.processed), ("created", summary.created),
                   ("updated", summary.updated)]
        task: Json = {
            "resourceType": "Task",
            "id": task_id,
            "identifier": [{"system": names.run_id, "value": task_id}],
            "status": status,
            "intent": "order",
            "code": {"coding": [{"system": names.task_system, "code": RUN_TASK, "display": "Risk stratification run"}]},
            "description": f"Stratify the population as of {summary.as_of.isoformat()} under "
                           + ", ".join(summary.methods),
            "authoredOn": started,
            "lastModified": iso_now(),
            "executionPeriod": {"start": started, **({"end": iso_now()} if status in ("completed", "failed") else {})},
            "businessStatus": {"text": note or f"{summary.processed} of {summary.patients} patients"},
            "input": [{"type": {"text": "asOf"}, "valueDate": summary.as_of.isoformat()},
                      *({"type": {"text": "method"}, "valueString": code} for code in summary.methods)],
            "output": [{"type": {"text": name}, "valueInteger": value} for name, value in outputs],
        }
        if status == "failed":
            task["statusReason"] = {"text": note}
        return task

    def save(self, task: Json) -> None:
        with self.care.unit() as repo:
            repo.update("Task", task["id"], task)

    def run(self, as_of: date, methods: list[str] | None = None, batch: int = 2000,
            progress: Progress | None = None, task_id: str | None = None) -> RunSummary:
        """Run now, recording the run as a Task updated as batches complete."""
        task_id = task_id or str(uuid.uuid4())
        started = iso_now()
        last = [0.0]

        def report(done: int, total: int, summary: RunSummary) -> None:
            if progress is not None:
                progress(done, total, summary)
            now = time.perf_counter()
            if now - last[0] >= 2.0 and done < total:
                last[0] = now
                self.save(self.task(summary, "in-progress", task_id, started))

        from .programme import activate_due

        with self.care.unit() as repo:
            activate_due(self.care, repo, as_of)
        run = PopulationRun(self.care, as_of, methods, batch, report)
        run.summary.task = task_id
        self.save(self.task(run.summary, "in-progress", task_id, started, "starting"))
        try:
            summary = run.execute()
        except Exception as exc:
            log.exception("stratification run %s failed", task_id)
            self.save(self.task(run.summary, "failed", task_id, started, f"failed: {type(exc).__name__}: {exc}"))
            raise
        self.save(self.task(summary, "completed", task_id, started, summary.describe()))
        self.care.prevalence_seen = True
        return summary

    def start(self, as_of: date, methods: list[str] | None = None, batch: int = 2000) -> str:
        """Start a run in a background thread; returns the id of the Task that reports on it."""
        select_methods(self.care, methods)
        task_id = str(uuid.uuid4())
        summary = RunSummary(as_of, [m.code for m in select_methods(self.care, methods)])
        self.save(self.task(summary, "requested", task_id, iso_now(), "queued"))

        def target() -> None:
            try:
                self.run(as_of, methods, batch, task_id=task_id)
            except Exception:  # recorded on the Task by run()
                pass
            finally:
                self.threads.pop(task_id, None)

        thread = threading.Thread(target=target, name=f"stratify-{task_id[:8]}", daemon=True)
        self.threads[task_id] = thread
        thread.start()
        return task_id

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background runs of this process (tests, shutdown)."""
        for thread in list(self.threads.values()):
            thread.join(timeout)
