"""Package changes, snapshot disappearance and the merge of a held SWIFT client, on the sample extracts."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from mappings import Mappings

from .conftest import history, load, load_all, search, versions

B = "https://sharedcare.example.org/fhir"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
SERVICE = f"{B}/Id/swift-service-id/E0900001"
SWIFT = "swift/E0900001/2026-10-31"
GP = "gp/Y90001/2026-10"
SAM_NHS = "9991011005"


def copy_extract(sample_dir: Path, tmp: Path, source_folder: str, new_label: str) -> Path:
    """A copy of a sample extract folder under a later extract date."""
    org_folder = tmp / Path(source_folder).parent
    target = org_folder / new_label
    shutil.copytree(sample_dir / source_folder, target)
    return target


def edit_csv(path: Path, keep: Callable[[dict[str, str]], bool] = lambda r: True,
             change: Callable[[dict[str, str]], None] = lambda r: None,
             add: list[dict[str, str]] | None = None) -> None:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = [r for r in reader if keep(r)]
    for row in rows:
        change(row)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows([*rows, *(add or [])])


def service(app: Flask, service_id: str) -> dict:
    [found] = search(app, "EpisodeOfCare", identifier=f"{SERVICE}|{service_id}")
    return found


def test_changes_file_ends_home_care_and_starts_a_residential_placement(
        new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load_all(app, sample_dir, tmp_path / "rejects", mappings)
    folder = tmp_path / "swift/E0900001/2026-11-14"
    folder.mkdir(parents=True)
    header = (sample_dir / SWIFT / "services.csv").read_text(encoding="utf-8").splitlines()[0]
    (folder / "services_changes.csv").write_text("\n".join([
        header,
        "SV5001,SW100234,Long Term Support: Community,Home Support,CASSR Commissioned Support,Upton Home Care Ltd,"
        "03/03/2026,13/11/2026,10.5,Hours,241.50,Ended,Moved to residential care,13/11/2026 16:20",
        "SV5008,SW100234,Long Term Support: Residential Care,Long Term Residential Care,CASSR Commissioned Support,"
        "Orchard Residential Home,14/11/2026,,1,Weeks,850.00,Active,Provision of service,14/11/2026 09:00",
    ]) + "\n", encoding="utf-8")
    equipment_before = service(app, "SV5002")
    report = load(app, "swift", folder, mappings, rejects=tmp_path / "rejects")
    assert report.exit_code() == 0, report.render()
    counts = report.by_type()["EpisodeOfCare"]
    assert (counts["created"], counts["updated"], counts["ended"]) == (1, 1, 0)

    home = service(app, "SV5001")
    assert home["status"] == "finished" and home["period"] == {"start": "2026-03-03", "end": "2026-11-13"}
    assert home["statusHistory"] == [{"status": "active", "period": {"start": "2026-03-03",
                                                                    "end": "2026-11-13T16:20:00+00:00"}}]
    before, after = history(app, "EpisodeOfCare", home["id"])
    assert (before["status"], after["status"]) == ("active", "finished")
    assert "end" not in before["period"] and "statusHistory" not in before
    outcome = [x for x in after["extension"] if x["url"].endswith("EventOutcome")]
    assert outcome[0]["valueCodeableConcept"] == {"text": "Moved to residential care"}

    placement = service(app, "SV5008")
    assert placement["status"] == "active" and placement["patient"] == home["patient"]
    assert placement["type"][0]["coding"][0]["code"] == "Long Term Residential Care"
    assert len(history(app, "EpisodeOfCare", placement["id"])) == 1
    assert service(app, "SV5002") == equipment_before  # a changes file applies only its rows


def test_a_changed_package_in_the_next_snapshot_keeps_a_version_trail(
        new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load(app, "swift", sample_dir / "swift", mappings, rejects=tmp_path)
    folder = copy_extract(sample_dir, tmp_path, SWIFT, "2026-11-30")

    def more_hours(row: dict[str, str]) -> None:
        if row["Service_ID"] == "SV5001":
            row.update(Planned_Units_Per_Week="14", Weekly_Cost="322.00", Last_Modified="20/11/2026 10:00")
        if row["Service_ID"] == "SV5007":  # Sam's supported living resumes after his hospital stay
            row.update(Status="Active", Reason_For_Change="", Last_Modified="25/11/2026 12:00")

    edit_csv(folder / "services.csv", change=more_hours)
    report = load(app, "swift", folder, mappings, rejects=tmp_path)
    assert report.by_type()["EpisodeOfCare"]["updated"] == 2, report.render()
    first, second = history(app, "EpisodeOfCare", service(app, "SV5001")["id"])
    units = [next(x["valueQuantity"]["value"] for x in v["extension"] if "PlannedUnits" in x["url"])
             for v in (first, second)]
    assert units == [10.5, 14] and "statusHistory" not in second
    sam = service(app, "SV5007")
    assert sam["status"] == "active"
    assert sam["statusHistory"] == [{"status": "onhold", "period": {"start": "2024-06-01",
                                                                   "end": "2026-11-25T12:00:00+00:00"}}]


def test_what_leaves_a_snapshot_is_ended_never_deleted(
        new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load_all(app, sample_dir, tmp_path / "rejects", mappings)
    counted = {kind: len(search(app, kind)) for kind in ("Patient", "Condition", "EpisodeOfCare",
                                                         "MedicationRequest", "Encounter")}
    swift = copy_extract(sample_dir, tmp_path, SWIFT, "2026-11-30")
    edit_csv(swift / "services.csv", keep=lambda r: r["Service_ID"] != "SV5002")
    gp = copy_extract(sample_dir, tmp_path, GP, "2026-11")
    for name in ("patients.csv", "coded_entries.csv", "medications.csv", "consultations.csv"):
        edit_csv(gp / name, keep=lambda r: r["nhs_number"] != "9991006850")  # David Singh left the practice
    edit_csv(gp / "coded_entries.csv", keep=lambda r: r["entry_id"] != "E6")  # Jean no longer housebound
    reports = [load(app, "swift", swift, mappings, rejects=tmp_path), load(app, "gp", gp, mappings, rejects=tmp_path)]
    ended = {kind: sum(r.by_type().get(kind, {}).get("ended", 0) for r in reports) for kind in
             ("EpisodeOfCare", "Patient", "Condition", "MedicationRequest", "MedicationStatement", "Observation",
              "Encounter")}
    assert ended == {"EpisodeOfCare": 1, "Patient": 1, "Condition": 1, "MedicationRequest": 1,
                     "MedicationStatement": 1, "Observation": 1, "Encounter": 0}

    equipment = service(app, "SV5002")
    assert equipment["status"] == "finished" and equipment["period"]["end"] == "2026-11-30"
    assert equipment["statusHistory"][-1] == {"status": "active", "period": {"start": "2026-03-03",
                                                                             "end": "2026-11-30"}}
    [david] = search(app, "Patient", identifier=f"{NHS}|9991006850")
    registration = next(i for i in david["identifier"] if "gp-patient-id" in i["system"])
    assert registration["period"] == {"start": "2015-02-14", "end": "2026-11"}
    assert "generalPractitioner" not in david and david.get("active") is not False
    [asthma] = search(app, "Condition", patient=f"Patient/{david['id']}")
    assert asthma["clinicalStatus"]["coding"][0]["code"] == "inactive"
    [inhaler] = search(app, "MedicationRequest", patient=f"Patient/{david['id']}")
    assert inhaler["status"] == "stopped"
    [housebound] = search(app, "Observation", identifier=f"{B}/Id/gp-entry-id/Y90001|E6")
    assert housebound["effectivePeriod"] == {"start": "2026-03-01", "end": "2026-11"}
    [consultation] = search(app, "Encounter", identifier=f"{B}/Id/gp-consultation-id/Y90001|C6")
    assert consultation["status"] == "finished"  # a finished contact stays as it was
    assert {kind: len(search(app, kind)) for kind in counted} == counted  # nothing deleted

    before = versions(app)
    load(app, "swift", swift, mappings, rejects=tmp_path)
    load(app, "gp", gp, mappings, rejects=tmp_path)
    assert versions(app) == before  # ending is idempotent too


def test_held_client_gains_the_nhs_number_when_nobody_has_it(
        new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load(app, "swift", sample_dir / "swift", mappings, rejects=tmp_path)
    [held] = search(app, "Patient", identifier=f"{B}/Id/swift-person-id/E0900001|SW100611")
    folder = copy_extract(sample_dir, tmp_path, SWIFT, "2026-11-30")
    edit_csv(folder / "clients.csv", change=lambda r: r.update(NHS_Number=SAM_NHS) if r["Person_ID"] == "SW100611"
             else None)
    load(app, "swift", folder, mappings, rejects=tmp_path)
    [traced] = search(app, "Patient", identifier=f"{NHS}|{SAM_NHS}")
    assert traced["id"] == held["id"] and "tag" not in traced["meta"]
    assert [v["meta"].get("tag") is not None for v in history(app, "Patient", held["id"])] == [True, False]


def test_traced_client_is_merged_into_the_patient_with_that_nhs_number(
        new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load_all(app, sample_dir, tmp_path / "rejects", mappings)
    [held] = search(app, "Patient", identifier=f"{B}/Id/swift-person-id/E0900001|SW100611")
    gp = copy_extract(sample_dir, tmp_path, GP, "2026-11")
    edit_csv(gp / "patients.csv", add=[{
        "nhs_number": SAM_NHS, "practice_ods": "Y90001", "gp_patient_id": "P1007", "family_name": "Reed",
        "given_name": "Sam", "date_of_birth": "1960-08-17", "sex": "M", "postcode": "ZZ2 8HH",
        "address_line": "3 Mill Court, Upton", "telecom": "", "registration_date": "2026-11-02",
        "deregistration_date": "", "date_of_death": "", "usual_gp_gmc": "7654321"}])
    load(app, "gp", gp, mappings, rejects=tmp_path)
    [survivor] = search(app, "Patient", identifier=f"{NHS}|{SAM_NHS}")
    assert survivor["id"] != held["id"]  # the GP does not know the SWIFT id: no guessing by name

    swift = copy_extract(sample_dir, tmp_path, SWIFT, "2026-11-30")
    edit_csv(swift / "clients.csv", change=lambda r: r.update(NHS_Number=SAM_NHS) if r["Person_ID"] == "SW100611"
             else None)
    report = load(app, "swift", swift, mappings, rejects=tmp_path)
    assert report.exit_code() == 0, report.render()

    [merged] = search(app, "Patient", identifier=f"{NHS}|{SAM_NHS}")
    assert merged["id"] == survivor["id"]
    assert {i["system"] for i in merged["identifier"]} == {
        NHS, f"{B}/Id/gp-patient-id/Y90001", f"{B}/Id/swift-person-id/E0900001"}
    assert merged["link"] == [{"other": {"reference": f"Patient/{held['id']}"}, "type": "replaces"}]
    assert merged["name"][0]["family"] == "Reed" and merged["address"][0]["line"] == ["3 Mill Court, Upton"]
    [old] = search(app, "Patient", _id=held["id"])
    assert old["active"] is False and "tag" not in old["meta"]
    assert old["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert [v.get("active") for v in history(app, "Patient", held["id"])] == [None, False]
    # everything about Sam now points at the survivor: his package of care and his client facts
    assert service(app, "SV5007")["patient"] == {"reference": f"Patient/{survivor['id']}"}
    assert len(search(app, "Observation", patient=f"Patient/{survivor['id']}")) == 3
    assert search(app, "Observation", patient=f"Patient/{held['id']}") == []
    assert search(app, "EpisodeOfCare", patient=f"Patient/{held['id']}") == []
    # a later load of the services finds Sam by his SWIFT id on the survivor
    before = versions(app)
    report = load(app, "swift", swift, mappings, rejects=tmp_path)
    assert versions(app) == before, report.render()
    assert len(search(app, "Patient")) == 9  # eight people, one of them held and now merged away
