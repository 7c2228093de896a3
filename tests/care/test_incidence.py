"""Incidence: a write that changes a patient's evidence re-stratifies them at once, and a patient who newly
meets a criterion gets a "screen for case management" Task."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .conftest import TODAY, B, assessments, call, care, ok, parameters, patient_id, search, tier

ADMISSION_METHOD = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
PRESCRIPTION_TYPE = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-PrescriptionType"
SCREEN = f"{B}/CodeSystem/care-task|screen-for-case-management"


@pytest.fixture(scope="module")
def app(sample_app: Flask) -> Flask:
    assert search(sample_app, "RiskAssessment") == []  # loading before the first run stratifies nobody
    care(sample_app).runs.run(TODAY)
    return sample_app


def admission(patient: str, start: str, method: str = "21", status: str = "in-progress") -> dict[str, Any]:
    return {
        "resourceType": "Encounter", "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{patient}"}, "period": {"start": start},
        "hospitalization": {"extension": [{"url": ADMISSION_METHOD, "valueCodeableConcept": {"coding": [
            {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland", "code": method}]}}]},
    }


def repeat(patient: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest", "status": "active", "intent": "plan",
        "extension": [{"url": PRESCRIPTION_TYPE, "valueCodeableConcept": {"coding": [
            {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-PrescriptionType", "code": "repeat"}]}}],
        "medicationCodeableConcept": {"text": name}, "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": "2026-10-30",
    }


def screening_tasks(app: Flask, who: str) -> list[dict[str, Any]]:
    return search(app, "Task", patient=f"Patient/{patient_id(app, who)}", code=SCREEN)


def test_a_second_emergency_admission_restratifies_at_once_and_raises_a_screening_task(app: Flask) -> None:
    harold = patient_id(app, "harold")
    before = assessments(app, "harold")
    assert "evercare" not in before and screening_tasks(app, "harold") == []
    ok(call(app, "POST", "Encounter", admission(harold, "2026-11-01T03:10:00Z")), 201)
    after = assessments(app, "harold")
    assert tier(after["evercare"]) == "high"  # two emergency admissions in 12 months: found at once
    essex = after["essex-frail-elderly"]
    assert essex["meta"]["versionId"] == "2" and tier(essex) == "very-high"
    assert "[frequent-admissions]" in essex["prediction"][0]["rationale"]
    tasks = screening_tasks(app, "harold")
    assert len(tasks) == 1
    task = tasks[0]
    assert task["status"] == "requested" and task["priority"] == "urgent"
    assert "Two or more emergency admissions" in task["description"]
    assert task["input"][0]["valueCode"] == "incidence"
    assert task["focus"]["reference"].startswith("RiskAssessment/")


def test_a_third_admission_does_not_raise_a_second_task_while_one_is_open(app: Flask) -> None:
    harold = patient_id(app, "harold")
    ok(call(app, "POST", "Encounter", admission(harold, "2026-11-02T01:00:00Z")), 201)
    assert len(screening_tasks(app, "harold")) == 1
    assert "3 emergency admissions" in assessments(app, "harold")["evercare"]["prediction"][0]["rationale"]


def test_a_nursing_home_placement_is_found_at_once(app: Flask) -> None:
    margaret = patient_id(app, "margaret")
    assert "[care-home-resident]" not in assessments(app, "margaret")["essex-frail-elderly"]["prediction"][0][
        "rationale"]
    ok(call(app, "POST", "Observation", {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "160734000",
                             "display": "Lives in a nursing home"}]},
        "subject": {"reference": f"Patient/{margaret}"}, "effectiveDateTime": "2026-11-01"}), 201)
    essex = assessments(app, "margaret")["essex-frail-elderly"]
    assert "[care-home-resident]" in essex["prediction"][0]["rationale"]
    tasks = screening_tasks(app, "margaret")
    assert len(tasks) == 1 and "Resident of a residential or nursing home" in tasks[0]["description"]


def test_new_repeat_medicines_in_one_transaction_restratify_once(app: Flask) -> None:
    edith = patient_id(app, "edith")
    essex_before = assessments(app, "edith")["essex-frail-elderly"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": repeat(edith, name), "request": {"method": "POST", "url": "MedicationRequest"}}
        for name in ("Furosemide 20mg tablets", "Ramipril 2.5mg capsules", "Atorvastatin 20mg tablets")]}
    ok(call(app, "POST", "", bundle))
    essex = assessments(app, "edith")["essex-frail-elderly"]
    assert int(essex["meta"]["versionId"]) == int(essex_before["meta"]["versionId"]) + 1
    assert "[multiple-prescriptions]" in essex["prediction"][0]["rationale"]
    assert "5 prescription drugs" in essex["prediction"][0]["rationale"]
    assert len(screening_tasks(app, "edith")) == 1


def test_a_change_that_meets_nothing_new_raises_no_task(app: Flask) -> None:
    jean = patient_id(app, "jean")
    ok(call(app, "POST", "MedicationRequest", repeat(jean, "Docusate 100mg capsules")), 201)
    assert "13 prescription drugs" in assessments(app, "jean")["essex-frail-elderly"]["prediction"][0]["rationale"]
    assert screening_tasks(app, "jean") == []


def test_a_recent_decline_stops_new_screening_tasks(app: Flask) -> None:
    arthur = patient_id(app, "arthur")
    ok(call(app, "POST", f"Patient/{arthur}/$screen", parameters(
        ("decision", "Code", "declined"), ("reason", "String", "Family prefer the nursing home team"),
        ("date", "Date", TODAY.isoformat()))))
    ok(call(app, "POST", "Encounter", admission(arthur, "2026-11-01T12:00:00Z")), 201)
    assert tier(assessments(app, "arthur")["evercare"]) == "high"
    tasks = screening_tasks(app, "arthur")
    assert [t["businessStatus"]["coding"][0]["code"] for t in tasks] == ["declined"]


def test_the_care_packages_own_writes_do_not_loop(app: Flask) -> None:
    david = patient_id(app, "david")
    ok(call(app, "POST", "Condition", {
        "resourceType": "Condition", "clinicalStatus": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        "subject": {"reference": f"Patient/{david}"}}), 201)
    assert assessments(app, "david") == {}  # 36: no rule set or measure applies to one more condition
    history = ok(call(app, "GET", "RiskAssessment/_history", _count="1000"))
    ids = [e["resource"]["id"] for e in history.get("entry", []) if "resource" in e]
    assert len(ids) == len(set(ids)) + sum(int(a["meta"]["versionId"]) - 1
                                           for a in search(app, "RiskAssessment"))


def test_a_gp_nomination_is_a_criterion_found_at_once(app: Flask) -> None:
    ivy = patient_id(app, "ivy")  # known to social care only
    assert "essex-frail-elderly" not in assessments(app, "ivy")
    ok(call(app, "POST", "ServiceRequest", {
        "resourceType": "ServiceRequest", "status": "active", "intent": "proposal",
        "code": {"coding": [{"system": f"{B}/CodeSystem/care-programme", "code": "case-management"}]},
        "subject": {"reference": f"Patient/{ivy}"}, "authoredOn": "2026-11-01",
        "reasonCode": [{"text": "Lives alone, recent bereavement, complex needs"}]}), 201)
    essex = assessments(app, "ivy")["essex-frail-elderly"]
    assert "[clinical-judgement]" in essex["prediction"][0]["rationale"] and essex["basis"][0]["reference"].startswith(
        "ServiceRequest/")
    assert len(screening_tasks(app, "ivy")) == 1
