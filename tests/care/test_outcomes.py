"""$outcomes on the sample extracts, against figures worked out by hand from the extract rows.

Jean Hardy is enrolled on 2026-05-01 (backdated) under the Rutland template; her assessment is completed on
2026-05-06. The report covers 2026-01-01 to 2026-10-31, so the "after" window is cut at 2026-11-01.

From hospital/RX999/2026-10/admissions.csv (all ADMIMETH 21, emergency; bed days = DISDATE - ADMIDATE):
  before [2025-05-01, 2026-05-01): S7001 01-12..01-20 = 8, S7002 02-03..02-16 = 13, S7003 04-22..04-29 = 7
      -> 3 admissions, 28 bed days
  after  [2026-05-01, 2026-11-01): S7004 07-08..07-21 = 13, S7005 09-30..10-09 = 9
      -> 2 admissions, 22 bed days
From ae_attendances.csv: A3001 2026-01-12 and A3002 2026-02-03 -> 2 before, 0 after.
From swift/E0900001/2026-10-31/services.csv, both open since 03/03/2026:
  SV5001 Home Support 10.5 Hours a week, £241.50 a week; SV5002 Equipment 1 Weeks, £4.20 a week.
  before: 2026-03-03..2026-04-30 = 29 + 30 = 59 days -> hours 10.5 * 59 / 7 = 88.5;
          cost (241.50 + 4.20) * 59 / 7 = 245.70 * 59 / 7 = 2070.90
  after: 2026-05-01..2026-10-31 = 31 + 30 + 31 + 31 + 30 + 31 = 184 days -> hours 10.5 * 184 / 7 = 276.0;
          cost 245.70 * 184 / 7 = 6458.40
Caseload: one case manager holding Jean -> 1. Days from identification (screening recorded at enrolment,
2026-05-01) to the completed assessment (2026-05-06): 5.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from .conftest import TODAY, call, care, case_manager, ok, parameters, patient_id, search

TASK = "https://sharedcare.example.org/fhir/CodeSystem/care-task"


@pytest.fixture(scope="module")
def report(sample_app: Flask) -> dict[str, Any]:
    app = sample_app
    care(app).runs.run(TODAY)
    manager = case_manager(app)
    jean = patient_id(app, "jean")
    enrolled = ok(call(app, "POST", f"Patient/{jean}/$enrol", parameters(
        ("template", "Code", "rutland"), ("careManager", "Reference", {"reference": manager}),
        ("start", "Date", "2026-05-01"))), 201)
    assessment = next(p["resource"] for p in enrolled["parameter"] if p["name"] == "assessment")
    done = {**assessment, "status": "completed", "executionPeriod": {"start": "2026-05-04", "end": "2026-05-06"}}
    ok(call(app, "PUT", f"Task/{assessment['id']}", done))
    return ok(call(app, "GET", "$outcomes", periodStart="2026-01-01", periodEnd="2026-10-31", practice="Y90001"))


def group(report: dict[str, Any], code: str) -> dict[str, Any]:
    return next(g for g in report["group"] if g["code"]["coding"][0]["code"] == code)


def total(report: dict[str, Any], code: str) -> float:
    return group(report, code)["measureScore"]["value"]


def test_patients_actively_case_managed(report: dict[str, Any]) -> None:
    assert report["resourceType"] == "MeasureReport" and report["type"] == "summary"
    assert report["period"] == {"start": "2026-01-01", "end": "2026-10-31"}
    assert total(report, "actively-case-managed") == 1


def test_emergency_admissions_bed_days_and_ae_before_and_after(report: dict[str, Any]) -> None:
    assert total(report, "emergency-admissions-before") == 3
    assert total(report, "emergency-admissions-after") == 2
    assert total(report, "emergency-bed-days-before") == 28
    assert total(report, "emergency-bed-days-after") == 22
    assert total(report, "ae-attendances-before") == 2
    assert total(report, "ae-attendances-after") == 0
    per_patient = group(report, "emergency-admissions-before")["stratifier"][0]["stratum"]
    assert [s["measureScore"]["value"] for s in per_patient] == [3]
    assert per_patient[0]["value"]["text"].startswith("Patient/")


def test_social_care_hours_and_cost_before_and_after(report: dict[str, Any]) -> None:
    assert total(report, "social-care-hours-before") == 88.5
    assert total(report, "social-care-hours-after") == 276.0
    assert total(report, "social-care-cost-before") == 2070.9
    assert total(report, "social-care-cost-after") == 6458.4
    assert group(report, "social-care-cost-after")["measureScore"]["code"] == "GBP"


def test_caseload_and_days_to_assessment(report: dict[str, Any]) -> None:
    caseload = group(report, "caseload")
    assert caseload["measureScore"]["value"] == 1
    assert [s["measureScore"]["value"] for s in caseload["stratifier"][0]["stratum"]] == [1]
    assert total(report, "days-to-assessment") == 5


def test_scope_and_programme_filters(sample_app: Flask, report: dict[str, Any]) -> None:
    elsewhere = ok(call(sample_app, "GET", "$outcomes", periodStart="2026-01-01", periodEnd="2026-10-31",
                        practice="Y99999"))
    assert total(elsewhere, "actively-case-managed") == 0
    other = ok(call(sample_app, "GET", "$outcomes", periodStart="2026-01-01", periodEnd="2026-10-31",
                    programme="case-management-intensive"))
    assert total(other, "actively-case-managed") == 0
    before = ok(call(sample_app, "GET", "$outcomes", periodStart="2025-01-01", periodEnd="2026-04-30"))
    assert total(before, "actively-case-managed") == 0  # enrolled after the period
    assert search(sample_app, "Task", code=f"{TASK}|assessment", status="completed")


def stratifier(group_: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return next(s for s in group_["stratifier"] if s["code"][0]["text"] == label)["stratum"]


def test_an_after_window_not_yet_ended_is_marked_incomplete(report: dict[str, Any]) -> None:
    """Jean's 12 months after 2026-05-01 are cut at the period's end (2026-11-01): 184 of 365 days, marked
    so on her stratum and counted under the incomplete windows, with what they hold so far."""
    admissions = group(report, "emergency-admissions-after")
    [jean] = stratifier(admissions, "patient")
    assert jean["component"] == [{"code": {"text": "after-enrolment window"},
                                  "value": {"text": "incomplete: 184 of 365 days"}}]
    assert jean["measureScore"]["value"] == 2
    assert stratifier(admissions, "after-enrolment window") == [
        {"value": {"text": "incomplete"}, "population": admissions["population"], "measureScore": {"value": 2}}]
    hours = stratifier(group(report, "social-care-hours-after"), "after-enrolment window")
    assert hours[0]["measureScore"] == {"value": 276.0, "unit": "h", "system": "http://unitsofmeasure.org",
                                        "code": "h"}
    before = group(report, "emergency-admissions-before")
    assert [s["code"][0]["text"] for s in before["stratifier"]] == ["patient"]
    assert "component" not in before["stratifier"][0]["stratum"][0]


def test_nothing_after_today_is_counted(sample_app: Flask, report: dict[str, Any]) -> None:
    """A period ending next year is counted up to today (2026-11-02): Jean's open home support is 186 days
    of 10.5 hours a week, not the whole year to come."""
    later = ok(call(sample_app, "GET", "$outcomes", periodStart="2026-01-01", periodEnd="2027-12-31"))
    [jean] = stratifier(group(later, "social-care-hours-after"), "patient")
    assert jean["component"][0]["value"]["text"] == "incomplete: 186 of 365 days"
    assert jean["measureScore"]["value"] == round(10.5 * 186 / 7, 2)


def test_no_mean_is_given_over_no_one(sample_app: Flask, report: dict[str, Any]) -> None:
    nobody = ok(call(sample_app, "GET", "$outcomes", periodStart="2026-01-01", periodEnd="2026-10-31",
                     practice="Y99999"))
    for key in ("caseload", "days-to-assessment"):
        entry = group(nobody, key)
        assert "measureScore" not in entry and entry["population"][0]["count"] == 0, entry
    assert total(nobody, "emergency-admissions-after") == 0  # a total over no one is none at all
    assert "stratifier" not in group(nobody, "emergency-admissions-after")


def test_an_ended_window_is_marked_complete(sample_app: Flask, report: dict[str, Any]) -> None:
    """Arthur enrolled on 2025-09-01: his 12 months after ended on 2026-09-01, within the period."""
    arthur = patient_id(sample_app, "arthur")
    manager = case_manager(sample_app, name="Bea Long", phone="01632 960101")
    ok(call(sample_app, "POST", f"Patient/{arthur}/$enrol", parameters(
        ("template", "Code", "rutland"), ("careManager", "Reference", {"reference": manager}),
        ("start", "Date", "2025-09-01"))), 201)
    both = ok(call(sample_app, "GET", "$outcomes", periodStart="2025-09-01", periodEnd="2026-10-31"))
    windows = {s["value"]["text"]: s["population"][0]["count"]
               for s in stratifier(group(both, "ae-attendances-after"), "after-enrolment window")}
    assert windows == {"complete": 1, "incomplete": 1}
    marks = {s["value"]["text"]: s["component"][0]["value"]["text"]
             for s in stratifier(group(both, "ae-attendances-after"), "patient")}
    assert marks == {f"Patient/{arthur}": "complete", f"Patient/{patient_id(sample_app, 'jean')}":
                     "incomplete: 184 of 365 days"}
