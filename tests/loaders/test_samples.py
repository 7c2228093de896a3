"""The sample extracts load into the expected record, and reloading them changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mappings import Mappings

from .conftest import SOURCES, load, load_all, search, versions

B = "https://sharedcare.example.org/fhir"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
JEAN = "9991000003"
ADMISSION_METHOD = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod"
PRESCRIPTION_TYPE = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-PrescriptionType"
SAMPLE_ROWS = {"patients.csv": (6, 6), "coded_entries.csv": (15, 15), "medications.csv": (27, 27),
               "consultations.csv": (7, 7), "clients.csv": (5, 5), "services.csv": (7, 7), "events.csv": (3, 3),
               "admissions.csv": (10, 10), "ae_attendances.csv": (4, 4)}


@pytest.fixture(scope="module")
def sample_app(new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings,
               tmp_path_factory: pytest.TempPathFactory) -> Flask:
    app = new_app()
    loaded = {}
    for report in load_all(app, sample_dir, tmp_path_factory.mktemp("rejects"), mappings):
        assert report.exit_code() == 0, report.render()
        assert all(f.rejected == 0 and f.held == 0 for f in report.files), report.render()
        loaded.update({f.name: (f.rows, f.loaded) for f in report.files})
    assert loaded == SAMPLE_ROWS  # every row of every file, the plausibility rules included
    return app


def patient(app: Flask, nhs: str) -> dict[str, Any]:
    found = search(app, "Patient", identifier=f"{NHS}|{nhs}")
    assert len(found) == 1, found
    return found[0]


def systems(resource: dict[str, Any]) -> dict[str, str]:
    return {i["system"]: i["value"] for i in resource["identifier"]}


def test_jean_is_one_patient_with_gp_swift_and_hospital_records(sample_app: Flask) -> None:
    jean = patient(sample_app, JEAN)
    ids = systems(jean)
    assert ids[NHS] == JEAN
    assert ids[f"{B}/Id/gp-patient-id/Y90001"] == "P1001"
    assert ids[f"{B}/Id/swift-person-id/E0900001"] == "SW100234"
    assert jean["name"][0]["family"] == "Hardy" and jean["birthDate"] == "1934-03-14"
    assert [gp["identifier"]["value"] for gp in jean["generalPractitioner"]] == ["Y90001", "1234567"]
    assert jean["meta"]["profile"] == [f"{B}/StructureDefinition/SCR-Patient"]
    spells = search(sample_app, "Encounter", identifier=f"{B}/Id/hospital-spell-id/RX999|")
    jeans = [s for s in spells if s["subject"]["reference"] == f"Patient/{jean['id']}"]
    assert len(jeans) == 5  # the hospital knows her by NHS number only: her spells are on the same Patient


def test_jean_has_five_emergency_admissions_in_2026(sample_app: Flask) -> None:
    jean = patient(sample_app, JEAN)
    encounters = search(sample_app, "Encounter", patient=f"Patient/{jean['id']}", date="ge2026-01-01")
    emergency = [
        e for e in encounters
        if e["class"]["code"] == "IMP" and e["period"]["start"].startswith("2026")
        and any(x["url"] == ADMISSION_METHOD and x["valueCodeableConcept"]["coding"][0]["code"].startswith("2")
                for x in e["hospitalization"]["extension"])
    ]
    assert len(emergency) == 5
    assert all(e["meta"]["profile"] == [f"{B}/StructureDefinition/SCR-Encounter-HospitalSpell"] for e in emergency)
    falls = next(e for e in emergency if e["period"]["start"] == "2026-02-03")
    diagnoses = {d["rank"]: d["condition"]["reference"] for d in falls["diagnosis"]}
    codes = {rank: search(sample_app, "Condition", _id=ref.split("/")[1])[0]["code"]["coding"][0]["code"]
             for rank, ref in diagnoses.items()}
    assert codes == {1: "S72.00", 2: "W19", 3: "M81.9"}


def test_jean_has_twelve_active_repeat_medicines_and_two_active_services(sample_app: Flask) -> None:
    jean = patient(sample_app, JEAN)
    requests = search(sample_app, "MedicationRequest", patient=f"Patient/{jean['id']}", status="active")
    repeats = [r for r in requests if any(x["url"] == PRESCRIPTION_TYPE and
                                          x["valueCodeableConcept"]["coding"][0]["code"] == "repeat"
                                          for x in r["extension"])]
    assert len(repeats) == 12
    statements = search(sample_app, "MedicationStatement", patient=f"Patient/{jean['id']}", status="active")
    assert len(statements) == 12
    assert all(s["basedOn"][0]["reference"].startswith("MedicationRequest/") for s in statements)
    services = search(sample_app, "EpisodeOfCare", patient=f"Patient/{jean['id']}", status="active")
    assert sorted(s["type"][0]["coding"][0]["code"] for s in services) == ["Equipment", "Home Support"]
    home = next(s for s in services if s["type"][0]["coding"][0]["code"] == "Home Support")
    extensions = {x["url"].rsplit("-", 1)[-1]: x for x in home["extension"]}
    assert extensions["PlannedUnitsPerWeek"]["valueQuantity"] == {
        "value": 10.5, "unit": "Hours", "system": f"{B}/CodeSystem/service-unit", "code": "Hours"}
    assert extensions["WeeklyCost"]["valueMoney"] == {"value": 241.5, "currency": "GBP"}
    assert home["managingOrganization"]["identifier"] == {"system": f"{B}/Id/council-code", "value": "E0900001"}


def test_sam_reed_is_held_and_flagged_for_tracing(sample_app: Flask) -> None:
    [sam] = search(sample_app, "Patient", identifier=f"{B}/Id/swift-person-id/E0900001|SW100611")
    assert [i["system"] for i in sam["identifier"]] == [f"{B}/Id/swift-person-id/E0900001"]
    assert sam["meta"]["tag"] == [{"system": f"{B}/CodeSystem/record-tag", "code": "nhs-number-trace-required",
                                   "display": "NHS number trace required"}]
    assert search(sample_app, "Patient", _tag=f"{B}/CodeSystem/record-tag|nhs-number-trace-required") == [sam]
    [service] = search(sample_app, "EpisodeOfCare", patient=f"Patient/{sam['id']}")
    assert service["status"] == "onhold"


def test_ivy_moss_swift_only_is_one_patient(sample_app: Flask) -> None:
    ivy = patient(sample_app, "9991010963")
    assert set(systems(ivy)) == {NHS, f"{B}/Id/swift-person-id/E0900001"}
    assert ivy["name"][0]["given"] == ["Ivy"] and "meta" in ivy and "tag" not in ivy["meta"]
    assert len(search(sample_app, "Patient")) == 8  # six registered, Ivy, Sam: nobody twice


def test_every_write_names_its_provenance(sample_app: Flask) -> None:
    provenances = {p["id"]: p for p in search(sample_app, "Provenance")}
    assert len(provenances) == 9  # one per file
    files = sorted(p["entity"][0]["what"]["display"].split(" ")[0] for p in provenances.values())
    assert "swift/E0900001/2026-10-31/services.csv" in files
    for kind in ("Patient", "Condition", "EpisodeOfCare", "Encounter", "MedicationRequest", "Observation"):
        for resource in search(sample_app, kind):
            source = resource["meta"]["source"]
            assert source.startswith("Provenance/") and source.split("/")[1] in provenances, resource


def test_reloading_every_sample_extract_changes_nothing(new_app: Callable[[], Flask], sample_dir: Path,
                                                        mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load_all(app, sample_dir, tmp_path, mappings)
    before = versions(app)
    for source in SOURCES:
        report = load(app, source, sample_dir / source, mappings, rejects=tmp_path)
        counts = report.by_type()
        assert all(c["created"] == c["updated"] == c["ended"] == 0 for c in counts.values()), report.render()
        assert sum(c["unchanged"] for c in counts.values()) > 0
    assert versions(app) == before


def test_loading_swift_before_gp_gives_the_same_people(new_app: Callable[[], Flask], sample_dir: Path,
                                                       mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    for source in ("swift", "hospital", "gp", "hospital"):
        load(app, source, sample_dir / source, mappings, rejects=tmp_path)
    jean = patient(app, JEAN)
    assert jean["name"][0]["given"] == ["Jean"] and jean["telecom"][0]["value"] == "01632 960001"
    assert len(systems(jean)) == 3 and len(search(app, "Patient")) == 8
    jeans = search(app, "Encounter", patient=f"Patient/{jean['id']}", _count="100")
    assert len([e for e in jeans if e["class"]["code"] == "IMP"]) == 5
