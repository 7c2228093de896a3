"""The demo area holds a year of case management: teams, caseloads, reviews, discharges, outcomes, Jean."""

from __future__ import annotations

from typing import Any

from tests.demo.conftest import Demo

NHS = "https://fhir.nhs.uk/Id/nhs-number"
JEAN = "9991000003"
CASE_MANAGER_ROLES = ("case-manager", "community-matron")


def entries(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", []) if e.get("search", {}).get("mode") == "match"]


def test_each_locality_has_a_team_with_names_identifiers_telephones_and_the_practices_it_covers(demo: Demo) -> None:
    http = demo.session("demo-integration")
    roles = entries(http.get(f"{demo.base}/PractitionerRole", params={"_count": 100,
                                                                       "_include": "PractitionerRole:practitioner"}))
    practitioners = {p["id"]: p for p in entries(http.get(f"{demo.base}/Practitioner", params={"_count": 100}))}
    codes = sorted(r["code"][0]["coding"][0]["code"] for r in roles)
    assert codes == sorted(["case-manager", "community-matron", "social-worker", "pharmacist"] * 2)
    for role in roles:
        person = practitioners[role["practitioner"]["reference"].split("/")[1]]
        assert person["identifier"][0]["value"] and person["name"][0]["family"]
        assert role["telecom"][0]["value"].startswith("01632 ")
        assert "Covers practices Y9000" in role["availabilityExceptions"]
    teams = entries(http.get(f"{demo.base}/Organization", params={"partof:Organization.identifier":
                                                                  "https://fhir.nhs.uk/Id/ods-organization-code|Y9L01"}))
    assert sorted(o["identifier"][0]["value"] for o in teams) == ["Y90001", "Y90002"]


def test_caseloads_are_partly_full_within_capacity(demo: Demo) -> None:
    http = demo.session("demo-integration")
    roles = [r for r in entries(http.get(f"{demo.base}/PractitionerRole", params={"_count": 100}))
             if r["code"][0]["coding"][0]["code"] in CASE_MANAGER_ROLES]
    assert len(roles) == 4
    for role in roles:
        caseload = http.get(f"{demo.base}/PractitionerRole/{role['id']}/$caseload")
        assert caseload.status_code == 200, caseload.text
        active = len(caseload.json().get("entry", []))
        assert 0 < active < 50, caseload.json()["note"]
        assert f"{active} active of a caseload of 50" in caseload.json()["note"][0]["text"]


def test_people_were_screened_and_some_declined_with_a_reason(demo: Demo) -> None:
    http = demo.session("demo-integration")
    declined = entries(http.get(f"{demo.base}/Task", params={"business-status": "declined", "_count": 200}))
    assert declined and all(t["statusReason"]["text"] for t in declined)
    total = http.get(f"{demo.base}/Task", params={"business-status": "accepted", "_summary": "count"}).json()["total"]
    assert total > 100


def test_enrolments_spread_over_the_year_under_both_templates_with_discharges_under_each(demo: Demo) -> None:
    http = demo.session("demo-integration")
    episodes = entries(http.get(f"{demo.base}/EpisodeOfCare", params={
        "type": "https://sharedcare.example.org/fhir/CodeSystem/care-programme|", "_count": 500}))
    programmes = {e["type"][0]["coding"][0]["code"] for e in episodes}
    assert programmes == {"case-management-intensive", "integrated-care-scheme"}
    months = {e["period"]["start"][:7] for e in episodes}
    assert len(months) >= 12
    for programme in programmes:
        finished = [e for e in episodes if e["type"][0]["coding"][0]["code"] == programme and e["status"] == "finished"]
        assert finished, programme
        active = [e for e in episodes if e["type"][0]["coding"][0]["code"] == programme and e["status"] == "active"]
        assert active, programme


def test_some_reviews_are_done_and_at_least_one_is_overdue(demo: Demo) -> None:
    http = demo.session("demo-integration")
    plans = entries(http.get(f"{demo.base}/CarePlan", params={"status": "active", "_count": 500}))
    done = overdue = 0
    for plan in plans:
        for activity in plan["activity"]:
            detail = activity["detail"]
            if detail["code"]["coding"][0]["code"] != "review" or "scheduledPeriod" not in detail:
                continue
            if detail["status"] == "completed":
                done += 1
            elif detail["scheduledPeriod"]["start"] < "2026-10-31":
                overdue += 1
    assert done > 0 and overdue > 0


def test_the_outcomes_report_has_figures_before_and_after_enrolment(demo: Demo) -> None:
    http = demo.session("demo-integration")
    report = http.get(f"{demo.base}/$outcomes", params={"periodStart": "2025-09-01", "periodEnd": "2026-10-31"})
    assert report.status_code == 200, report.text
    scores = {g["code"]["text"]: g["measureScore"]["value"] for g in report.json()["group"]
              if "measureScore" in g}  # a mean over no one has none
    assert scores["Emergency admissions in the 12 months before enrolment"] > 0
    assert scores["Emergency admissions in the 12 months after enrolment"] > 0
    assert scores["Social care hours in the 12 months after enrolment"] > 0


def test_admissions_after_enrolment_raised_alerts_and_tasks_for_the_case_managers(demo: Demo) -> None:
    http = demo.session("demo-integration")
    tasks = entries(http.get(f"{demo.base}/Task", params={
        "code": "https://sharedcare.example.org/fhir/CodeSystem/care-task|admission-alert", "_count": 50}))
    assert len(tasks) >= 3 and all(t["owner"]["reference"].startswith("PractitionerRole/") for t in tasks)
    flags = [f for f in entries(http.get(f"{demo.base}/Flag", params={"status": "active", "_count": 500}))
             if "in hospital" in f["code"]["text"]]
    assert len(flags) >= 3


def test_jean_was_found_enrolled_and_her_case_manager_is_on_case_status(demo: Demo) -> None:
    http = demo.session("demo-hospital")
    answer = http.get(f"{demo.base}/Patient/$case-status", params={"identifier": f"{NHS}|{JEAN}"})
    assert answer.status_code == 200, answer.text
    parts = {p["name"]: p for p in answer.json()["parameter"]}
    assert parts["patient"]["valueReference"]["display"] == "Jean Hardy"
    assert parts["caseManaged"]["valueBoolean"] is True
    manager = {p["name"]: p.get("valueString") for p in parts["caseManager"]["part"]}
    assert manager["name"] == "Anne Khan" and manager["telephone"] == "01632 960100"
    team = demo.session("demo-case-management")
    jean = entries(team.get(f"{demo.base}/Patient", params={"identifier": f"{NHS}|{JEAN}"}))[0]
    assert jean["birthDate"] == "1936-03-14"
    admissions = entries(team.get(f"{demo.base}/Encounter", params={
        "patient": f"Patient/{jean['id']}", "class": "IMP", "date": "ge2026-01-01", "_count": 50}))
    assert len(admissions) == 5
    screening = entries(team.get(f"{demo.base}/Task", params={"patient": f"Patient/{jean['id']}",
                                                               "business-status": "accepted"}))
    assert screening and screening[0]["executionPeriod"]["end"] == "2026-10-20"


def test_the_person_who_objected_is_hidden_from_others_and_open_to_break_glass(demo: Demo) -> None:
    consents = entries(demo.session("demo-integration").get(f"{demo.base}/Consent"))
    assert len(consents) == 1
    person = demo.session("demo-integration").get(f"{demo.base}/{consents[0]['patient']['reference']}").json()
    nhs = next(i["value"] for i in person["identifier"] if i["system"] == NHS)
    hospital = demo.session("demo-hospital")
    hidden = hospital.get(f"{demo.base}/Patient/$case-status", params={"identifier": f"{NHS}|{nhs}"})
    assert hidden.status_code == 403 and hidden.json()["issue"][0]["code"] == "suppressed"
    opened = hospital.get(f"{demo.base}/Patient/$case-status", params={"identifier": f"{NHS}|{nhs}"},
                          headers={"X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": "unconscious in A&E"})
    assert opened.status_code == 200, opened.text
    parts = {p["name"]: p for p in opened.json()["parameter"]}
    assert parts["caseManaged"]["valueBoolean"] is True


def test_the_output_is_short_and_says_the_faulty_rows_are_on_purpose(demo: Demo) -> None:
    lines = demo.output.splitlines()
    assert len(lines) < 40
    assert "faulty rows on purpose" in demo.output and ".rejects.csv" in demo.output


def test_a_second_demo_says_the_database_holds_it_and_how_to_start_again(demo: Demo) -> None:
    again = demo.sharedcare("demo", "--synth-dir", str(demo.folder / "var" / "synth"))
    assert again.returncode == 0, again.stderr
    assert "already holds data" in again.stdout and "To start again from nothing" in again.stdout
    assert "Loading" not in again.stdout
