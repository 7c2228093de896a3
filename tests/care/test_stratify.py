"""Risk stratification of the sample extracts: every rule set and measure, with the evidence each points at."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from server.care.assessments import assessment_id

from .conftest import TODAY, B, assessments, basis, call, care, ok, patient_id, score, search, tier


@pytest.fixture(scope="module")
def stratified(sample_app: Flask) -> Flask:
    summary = care(sample_app).runs.run(TODAY)
    assert summary.processed == summary.patients >= 8
    return sample_app


def kinds(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        found.setdefault(resource["resourceType"], []).append(resource)
    return found


def codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


def test_jean_is_high_risk_under_essex_with_the_admissions_and_medicines_as_evidence(stratified: Flask) -> None:
    essex = assessments(stratified, "jean")["essex-frail-elderly"]
    assert tier(essex) in ("high", "very-high")
    assert tier(essex) == "very-high"  # three criteria met
    assert score(essex) == 1  # the first criterion in priority order (frail elderly indicators)
    rationale = essex["prediction"][0]["rationale"]
    for criterion in ("[frail-elderly-admission]", "[frequent-admissions]", "[multiple-prescriptions]"):
        assert criterion in rationale
    assert "[care-home-resident]" not in rationale and "[clinical-judgement]" not in rationale
    evidence = kinds(basis(stratified, essex))
    spells = {e["period"]["start"] for e in evidence["Encounter"]}
    assert spells == {"2026-01-12", "2026-02-03", "2026-04-22", "2026-07-08", "2026-09-30"}
    indicators = {c["code"]["coding"][0]["code"] for c in evidence["Condition"]}
    assert indicators == {"N39.0", "W19", "E86"}  # UTI, fall (external cause), dehydration
    assert len(evidence["MedicationRequest"]) == 12
    assert all(m["intent"] == "plan" and m["status"] == "active" for m in evidence["MedicationRequest"])
    assert essex["method"]["coding"][0]["version"] == "2005.1"
    assert essex["meta"]["profile"] == [f"{B}/StructureDefinition/SCR-RiskAssessment"]


def test_jean_meets_rutland_with_conditions_repeat_medicines_and_age(stratified: Flask) -> None:
    rutland = assessments(stratified, "jean")["rutland-integrated-care"]
    assert tier(rutland) == "high"
    evidence = kinds(basis(stratified, rutland))
    problems = set().union(*(codes(c) for c in evidence["Condition"]))
    assert problems == {"44054006", "84114007", "13645005", "64859006"}  # diabetes, HF, COPD, osteoporosis
    assert len(evidence["MedicationRequest"]) == 12
    assert [p["birthDate"] for p in evidence["Patient"]] == ["1934-03-14"]  # over 60
    assert "4 long-term conditions" in rutland["prediction"][0]["rationale"]


def test_jean_hfrs_counts_each_three_character_category_once(stratified: Flask) -> None:
    hfrs = assessments(stratified, "jean")["hfrs"]
    # N39 3.2 (twice: counted once) + W19 3.2 + E86 2.3 (twice) + M81 1.4 + S72 1.4 = 11.5
    assert score(hfrs) == 11.5
    assert tier(hfrs) == "hfrs-intermediate"
    evidence = kinds(basis(stratified, hfrs))
    categories = {c["code"]["coding"][0]["code"][:3] for c in evidence["Condition"]}
    assert categories == {"N39", "W19", "E86", "M81", "S72"}
    assert len(evidence["Encounter"]) == 4  # the COPD admission scores nothing


def test_jean_efi_lists_her_deficits(stratified: Flask) -> None:
    efi = assessments(stratified, "jean")["efi"]
    # diabetes, heart failure, respiratory disease, osteoporosis, fragility fracture (64859006 is in both
    # lists), falls, housebound, social vulnerability (lives alone) and polypharmacy: 9 of 36
    assert score(efi) == 0.25
    assert tier(efi) == "efi-moderate"
    rationale = efi["prediction"][0]["rationale"]
    for deficit in ("diabetes", "heart-failure", "respiratory-disease", "osteoporosis", "fragility-fracture",
                    "falls", "housebound", "social-vulnerability", "polypharmacy"):
        assert deficit in rationale
    evidence = kinds(basis(stratified, efi))
    findings = set().union(*(codes(o) for o in evidence["Observation"]))
    assert findings == {"161898004", "160689007", "105529008"}


def test_david_meets_nothing(stratified: Flask) -> None:
    assert assessments(stratified, "david") == {}


def test_harold_meets_essex_through_nausea_and_vomiting_because_he_is_over_70(stratified: Flask) -> None:
    harold = assessments(stratified, "harold")
    essex = harold["essex-frail-elderly"]
    assert tier(essex) == "high" and score(essex) == 1
    assert "R11 (nausea and vomiting)" in essex["prediction"][0]["rationale"]
    evidence = kinds(basis(stratified, essex))
    assert [c["code"]["coding"][0]["code"] for c in evidence["Condition"]] == ["R11"]
    assert set(harold) == {"essex-frail-elderly", "efi", "hfrs"}  # one admission: not Evercare


def test_arthur_meets_essex_as_a_nursing_home_resident(stratified: Flask) -> None:
    essex = assessments(stratified, "arthur")["essex-frail-elderly"]
    assert "[care-home-resident]" in essex["prediction"][0]["rationale"]
    evidence = kinds(basis(stratified, essex))
    observations = evidence["Observation"]
    gp_finding = [o for o in observations if "160734000" in codes(o)]
    swift = [o for o in observations if "accommodation-status" in codes(o)]
    assert gp_finding and swift
    assert swift[0]["valueCodeableConcept"]["coding"][0]["code"] == "Registered nursing home"
    placement = evidence["EpisodeOfCare"]
    assert [p["type"][0]["coding"][0]["code"] for p in placement] == ["Long Term Nursing Care"]


def test_margaret_meets_rutland_and_nobody_under_60_does(stratified: Flask) -> None:
    assert tier(assessments(stratified, "margaret")["rutland-integrated-care"]) == "high"
    rutland = f"{B}/CodeSystem/case-finding-rule-set|rutland-integrated-care"
    everyone = search(stratified, "RiskAssessment", method=rutland)
    assert len(everyone) == 2  # Jean and Margaret


def test_a_second_run_writes_nothing(stratified: Flask) -> None:
    before = search(stratified, "RiskAssessment")
    summary = care(stratified).runs.run(TODAY)
    assert (summary.created, summary.updated) == (0, 0)
    after = search(stratified, "RiskAssessment")
    assert [a["meta"]["versionId"] for a in before] == [a["meta"]["versionId"] for a in after]


def test_assessments_have_stable_ids_and_validate_against_their_profile(stratified: Flask) -> None:
    jean = patient_id(stratified, "jean")
    for method, assessment in assessments(stratified, "jean").items():
        assert assessment["id"] == assessment_id(jean, method)
        outcome = ok(call(stratified, "POST", "RiskAssessment/$validate", assessment))
        assert all(i["severity"] not in ("error", "fatal") for i in outcome["issue"]), outcome


def test_the_run_is_a_completed_task(stratified: Flask) -> None:
    runs = search(stratified, "Task", code=f"{B}/CodeSystem/care-task|stratification-run")
    assert runs and all(r["status"] == "completed" for r in runs)
    outputs = {o["type"]["text"]: o["valueInteger"] for o in runs[0]["output"]}
    assert outputs["processed"] == outputs["patients"]
