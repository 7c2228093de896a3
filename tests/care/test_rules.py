"""The rule book format and the evaluation of rule sets and measures on hand-built records (no database)."""

from __future__ import annotations

import shutil
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from server.care.calendar import add_months, age_on
from server.care.codes import IcdMatcher, icd_key
from server.care.engine import Result, Stratifier
from server.care.evidence import FactReader
from server.care.names import Names
from server.care.rulesets import RuleBook, RuleBookError

AS_OF = date(2026, 11, 2)
ADMISSION_METHOD = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
PRESCRIPTION_TYPE = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-PrescriptionType"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
B = "https://sharedcare.example.org/fhir"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return RuleBook.load()


@pytest.fixture(scope="module")
def stratifier(book: RuleBook) -> Stratifier:
    return Stratifier(book)


class Person:
    """A hand-built record of one patient, fed to a FactReader."""

    def __init__(self, birth: str) -> None:
        self.reader = FactReader(Names(), AS_OF)
        self.reader.add("Patient", "p", {"birthDate": birth, "name": [{"family": "Test"}]})
        self.count = 0

    def next_id(self) -> str:
        self.count += 1
        return f"r{self.count}"

    def admission(self, start: str, *codes: str, method: str = "21") -> str:
        encounter = self.next_id()
        conditions = [self.next_id() for _ in codes]
        self.reader.add("Encounter", encounter, {
            "status": "finished", "class": {"code": "IMP"}, "subject": {"reference": "Patient/p"},
            "period": {"start": start, "end": start},
            "hospitalization": {"extension": [{"url": ADMISSION_METHOD,
                                               "valueCodeableConcept": {"coding": [{"code": method}]}}]},
            "diagnosis": [{"condition": {"reference": f"Condition/{c}"}, "rank": i + 1}
                          for i, c in enumerate(conditions)]})
        for condition, code in zip(conditions, codes, strict=True):
            self.reader.add("Condition", condition, {
                "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
                "code": {"coding": [{"system": ICD10, "code": code}]}, "subject": {"reference": "Patient/p"},
                "encounter": {"reference": f"Encounter/{encounter}"}})
        return encounter

    def problem(self, code: str, system: str = SNOMED, status: str = "active") -> None:
        self.reader.add("Condition", self.next_id(), {
            "category": [{"coding": [{"code": "problem-list-item"}]}],
            "clinicalStatus": {"coding": [{"code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}, "subject": {"reference": "Patient/p"}})

    def finding(self, code: str, day: str = "2026-01-01") -> None:
        self.reader.add("Observation", self.next_id(), {
            "status": "final", "code": {"coding": [{"system": SNOMED, "code": code}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": day})

    def medicines(self, count: int, kind: str = "repeat", status: str = "active", authored: str = "2025-01-01") -> None:
        for _ in range(count):
            self.reader.add("MedicationRequest", self.next_id(), {
                "status": status, "intent": "plan", "medicationCodeableConcept": {"text": f"drug {self.count}"},
                "subject": {"reference": "Patient/p"}, "authoredOn": authored,
                "extension": [{"url": PRESCRIPTION_TYPE, "valueCodeableConcept": {"coding": [{"code": kind}]}}]})

    def accommodation(self, value: str, day: str) -> None:
        self.reader.add("Observation", self.next_id(), {
            "status": "final",
            "code": {"coding": [{"system": f"{B}/CodeSystem/social-care-observation", "code": "accommodation-status"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": day,
            "valueCodeableConcept": {"coding": [{"system": f"{B}/CodeSystem/cld-accommodation-status",
                                                 "code": value}]}})

    def results(self, stratifier: Stratifier) -> dict[str, Result]:
        facts = self.reader.finish()["p"]
        return {r.method.code: r for r in stratifier.assess(facts, AS_OF)}


def test_the_rule_book_holds_the_four_rule_sets_in_priority_order_and_both_measures(book: RuleBook) -> None:
    assert [m.code for m in book.methods] == ["essex-frail-elderly", "rutland-integrated-care", "castlefields",
                                               "evercare", "efi", "hfrs"]
    essex = book.rule_sets["essex-frail-elderly"]
    assert [c.id for c in essex.criteria] == ["frail-elderly-admission", "frequent-admissions", "care-home-resident",
                                              "multiple-prescriptions", "clinical-judgement"]
    assert essex.applies[0].min == 65
    assert len(book.measures["hfrs"].points) == 109 and len(book.measures["efi"].deficits) == 35
    assert set(book.templates) == {"havering", "rutland"}
    assert book.settings.caseload == 50 and book.settings.new_per_month == 20


def test_a_locality_adds_a_rule_set_as_a_file(tmp_path: Path) -> None:
    root = tmp_path / "rulesets"
    shutil.copytree(str(resources.files("profiles").joinpath("rulesets")), root)
    (root / "case-finding" / "local.yaml").write_text("""
kind: rule-set
code: evercare
version: "2026.1"
title: Evercare, three admissions
status: active
order: 0
criteria:
  - id: three-admissions
    all:
      - {kind: admissions, method: emergency, within_months: 12, min: 3}
""")
    (root / "case-finding" / "evercare.yaml").unlink()
    book = RuleBook.load(root)
    assert book.methods[0].code == "evercare" and book.rule_sets["evercare"].version == "2026.1"
    person = Person("1940-01-01")
    for start in ("2026-02-01", "2026-05-01"):
        person.admission(start, "J18.9")
    assert not person.results(Stratifier(book))["evercare"].found


@pytest.mark.parametrize(("text", "message"), [
    ("kind: rule-set\ncode: x\nversion: '1'\ntitle: x\ncriteria: [{id: a, all: [{kind: weather}]}]\n",
     "kind 'weather' is not one of"),
    ("kind: rule-set\ncode: x\nversion: '1'\ntitle: x\ncriteria: [{id: a, all: [{kind: age, mni: 3}]}]\n",
     "unknown key(s) mni"),
    ("kind: rule-set\ncode: x\nversion: '1'\ntitle: x\ncriteria: [{id: a, all: [{kind: admissions, "
     "diagnoses: [{code: W19-W00}]}]}]\n", "not a range"),
    ("kind: rule-set\ncode: x\nversion: '1'\ntitle: x\ncriteria: [{id: a, all: [{kind: medicines}]}]\n",
     "needs 'min'"),
])
def test_a_rule_set_that_cannot_be_used_is_reported_with_its_file(tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "rulesets"
    shutil.copytree(str(resources.files("profiles").joinpath("rulesets")), root)
    (root / "case-finding" / "broken.yaml").write_text(text)
    with pytest.raises(RuleBookError) as caught:
        RuleBook.load(root)
    assert "rulesets/broken.yaml" in str(caught.value) and message in str(caught.value)


def test_icd10_codes_match_categories_ranges_and_prefixes() -> None:
    assert icd_key("R11X") == "R11" and icd_key("N39.0") == "N390" and icd_key("S72.00") == "S7200"
    falls = IcdMatcher.parse("W00-W19")
    assert falls.matches("W19") and falls.matches("W01.0") and not falls.matches("W20")
    assert IcdMatcher.parse("K59.0").matches("K590") and not IcdMatcher.parse("K59.0").matches("K59.1")
    assert IcdMatcher.parse("E86").matches("E86X")


def test_calendar_months_and_ages() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 2), -12) == date(2025, 11, 2)
    assert age_on(date(1956, 11, 3), AS_OF) == 69 and age_on(date(1956, 11, 2), AS_OF) == 70


def test_working_days_skip_weekends_and_bank_holidays(book: RuleBook) -> None:
    days = book.working_days
    assert days.add(date(2026, 11, 2), 2) == date(2026, 11, 4)
    assert days.add(date(2026, 11, 6), 2) == date(2026, 11, 10)  # Friday: Monday, Tuesday
    assert days.add(date(2026, 4, 2), 2) == date(2026, 4, 8)  # Good Friday and Easter Monday
    assert days.add(date(2027, 12, 24), 1) == date(2027, 12, 29)  # 27 and 28 December are substitute days


@pytest.mark.parametrize(("birth", "met"), [("1956-06-06", True), ("1956-06-07", False)])  # age at admission
def test_nausea_and_vomiting_counts_from_70(stratifier: Stratifier, birth: str, met: bool) -> None:
    person = Person(birth)
    person.admission("2026-06-06", "R11", "K59.0")  # constipation as a secondary diagnosis does not count
    essex = person.results(stratifier)["essex-frail-elderly"]
    assert essex.found is met
    if met:
        assert essex.met == ("frail-elderly-admission",) and "R11" in essex.rationale


def test_a_fall_counts_as_a_secondary_external_cause(stratifier: Stratifier) -> None:
    person = Person("1948-06-09")
    person.admission("2026-08-10", "S72.00", "W01.0")
    assert person.results(stratifier)["essex-frail-elderly"].met == ("frail-elderly-admission",)


def test_elective_and_old_admissions_do_not_count_as_frequent(stratifier: Stratifier) -> None:
    person = Person("1940-01-01")
    person.admission("2026-03-01", "J18.9")
    person.admission("2026-04-01", "N18.9", method="11")
    person.admission("2025-10-01", "J18.9")  # more than 12 months before 2 November 2026
    results = person.results(stratifier)
    assert not results["evercare"].found and not results["essex-frail-elderly"].found
    assert results["hfrs"].score == 2.5  # J18 1.1 + N18 1.4: HFRS counts every admission in 2 years


def test_rutland_needs_all_three_criteria(stratifier: Stratifier) -> None:
    person = Person("1960-01-01")
    for code in ("44054006", "84114007"):
        person.problem(code)
    person.problem("59621000", status="resolved")
    person.medicines(5)
    assert not person.results(stratifier)["rutland-integrated-care"].found  # two active conditions
    person.problem("G20..", "http://read.info/readv2")
    rutland = person.results(stratifier)["rutland-integrated-care"]
    assert rutland.found and rutland.tier == "high" and "3 long-term conditions" in rutland.rationale


def test_residence_follows_the_latest_social_care_accommodation_status(stratifier: Stratifier) -> None:
    person = Person("1935-01-01")
    person.accommodation("Registered nursing home", "2025-01-01")
    person.accommodation("Owner occupier or shared ownership scheme", "2026-06-01")
    assert not person.results(stratifier)["essex-frail-elderly"].found
    person.accommodation("Registered care home", "2026-10-01")
    essex = person.results(stratifier)["essex-frail-elderly"]
    assert essex.met == ("care-home-resident",) and essex.score == 3


def test_efi_counts_deficits_and_polypharmacy_over_36(stratifier: Stratifier) -> None:
    person = Person("1940-01-01")
    person.finding("161898004")  # falls
    person.finding("160689007")  # housebound
    person.medicines(3, "acute", "completed", "2026-09-01")
    person.medicines(2, "acute", "completed", "2025-09-01")  # more than 12 months ago: not counted
    person.medicines(1)
    efi = person.results(stratifier)["efi"]
    assert efi.met == ("falls", "housebound") and efi.score == round(2 / 36, 4) and efi.tier == "efi-fit"
    person.medicines(1)
    efi = person.results(stratifier)["efi"]
    assert "polypharmacy" in efi.met and efi.score == round(3 / 36, 4)


def test_efi_and_hfrs_bands(book: RuleBook) -> None:
    efi, hfrs = book.measures["efi"], book.measures["hfrs"]
    assert [efi.tier(s) for s in (0.12, 0.13, 0.24, 0.25, 0.36, 0.37)] == [
        "efi-fit", "efi-mild", "efi-mild", "efi-moderate", "efi-moderate", "efi-severe"]
    assert [hfrs.tier(s) for s in (4.9, 5, 15, 15.1)] == ["hfrs-low", "hfrs-intermediate", "hfrs-intermediate",
                                                         "hfrs-high"]


def test_measures_do_not_apply_under_65(stratifier: Stratifier) -> None:
    person = Person("1990-11-05")
    person.admission("2026-03-03", "N39.0")
    person.finding("161898004")
    results: dict[str, Any] = person.results(stratifier)
    assert not any(r.found for r in results.values())
