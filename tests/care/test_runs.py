"""Population runs through `$stratify` (synchronous and in the background) and the `stratify` command, and
the assessment due date of a patient found through incidence."""

from __future__ import annotations

import time
from datetime import date

import pytest
from click.testing import CliRunner
from flask import Flask

from server.cli import main

from .conftest import B, call, care, case_manager, ok, parameters, patient_id, search

RUNS = f"{B}/CodeSystem/care-task|stratification-run"


def test_stratify_runs_small_populations_at_once_and_reports_on_a_task(sample_app: Flask) -> None:
    response = call(sample_app, "POST", "$stratify", parameters(("asOf", "Date", "2026-11-02"),
                                                                ("method", "Code", "evercare")))
    task = ok(response)
    assert task["resourceType"] == "Task" and task["status"] == "completed"
    assert response.headers["Content-Location"].endswith(f"/Task/{task['id']}")
    outputs = {o["type"]["text"]: o["valueInteger"] for o in task["output"]}
    assert outputs["created"] == 2  # Evercare: Jean and Edith
    assert {a["method"]["coding"][0]["code"] for a in search(sample_app, "RiskAssessment")} == {"evercare"}
    assert call(sample_app, "POST", "$stratify", parameters(("method", "Code", "nonsense"))).status == 400


def test_stratify_in_the_background_answers_202_and_a_task_to_poll(sample_app: Flask) -> None:
    response = call(sample_app, "POST", "$stratify", parameters(("asOf", "Date", "2026-11-02"),
                                                                ("async", "Boolean", True)))
    assert response.status == 202
    location = response.headers["Content-Location"]
    task_id = location.rsplit("/", 1)[1]
    deadline = time.time() + 60
    while True:
        task = ok(call(sample_app, "GET", f"Task/{task_id}"))
        if task["status"] in ("completed", "failed") or time.time() > deadline:
            break
        time.sleep(0.1)
    assert task["status"] == "completed", task
    assert "stratified" in task["businessStatus"]["text"]
    assert len(search(sample_app, "RiskAssessment")) == 23
    assert len(search(sample_app, "Task", code=RUNS)) == 2


def test_the_stratify_command_runs_the_population(sample_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = sample_app.extensions["sharedcare.settings"]
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["stratify", "--as-of", "2026-11-02"])
    assert result.exit_code == 0, result.output
    assert "stratified" in result.output and "0 assessments created, 0 updated" in result.output


def test_a_patient_found_through_incidence_is_assessed_within_two_working_days(sample_app: Flask) -> None:
    services = care(sample_app)
    services.clock = lambda: date(2026, 12, 24)
    try:
        harold = patient_id(sample_app, "harold")
        ok(call(sample_app, "POST", "Encounter", {
            "resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/{harold}"}, "period": {"start": "2026-12-23T22:00:00Z"},
            "hospitalization": {"extension": [{
                "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod",
                "valueCodeableConcept": {"coding": [{"code": "21"}]}}]}}), 201)
        screening = search(sample_app, "Task", patient=f"Patient/{harold}",
                           code=f"{B}/CodeSystem/care-task|screen-for-case-management")
        assert len(screening) == 1 and screening[0]["input"][0]["valueCode"] == "incidence"
        manager = case_manager(sample_app, "Dee Park", "case-manager", "01632 960400")
        answer = ok(call(sample_app, "POST", f"Patient/{harold}/$enrol", parameters(
            ("template", "Code", "havering"), ("careManager", "Reference", {"reference": manager}),
            ("start", "Date", "2026-12-24"))), 201)
        resources = {p["name"]: p["resource"] for p in answer["parameter"] if "resource" in p}
        # screened Thursday 24 December 2026: Christmas Day (Friday), the weekend and the Boxing Day
        # substitute holiday (Monday 28th) are not working days -> Tuesday 29th, Wednesday 30th
        assert resources["assessment"]["restriction"]["period"]["end"] == "2026-12-30"
        assert resources["screening"]["id"] == screening[0]["id"]
        plan = resources["carePlan"]
        assert plan["period"] == {"start": "2026-12-24", "end": "2027-03-18"}  # 12 weeks
        visits = [a for a in plan["activity"] if a["detail"]["code"]["coding"][0]["code"] == "contact-home-visit"]
        assert visits[0]["detail"]["scheduledTiming"]["repeat"]["frequency"] == 2
    finally:
        services.clock = lambda: date(2026, 11, 2)


def test_stratify_one_patient_answers_their_assessments(sample_app: Flask) -> None:
    jean = patient_id(sample_app, "jean")
    bundle = ok(call(sample_app, "POST", f"Patient/{jean}/$stratify", parameters(("asOf", "Date", "2026-11-02"))))
    methods = sorted(e["resource"]["method"]["coding"][0]["code"] for e in bundle["entry"])
    assert methods == ["castlefields", "efi", "essex-frail-elderly", "evercare", "hfrs", "rutland-integrated-care"]
    assert call(sample_app, "POST", "Patient/unknown/$stratify", parameters()).status == 404
