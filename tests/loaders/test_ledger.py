"""The load ledger: unchanged rows are skipped on reload, and only while nothing else changed what they wrote."""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from flask import Flask

from loaders.report import FileReport, LoadReport
from mappings import Mappings
from mappings.spec import load_systems, parse
from server.api.model import FhirRequest
from server.security.context import Caller
from server.store.ledger import LoadLedger

from .conftest import SOURCES, load, load_all, search, versions
from .test_changes import GP, SWIFT, copy_extract, edit_csv
from .test_mappings import raw_spec

NHS = "https://fhir.nhs.uk/Id/nhs-number"
JEAN = "9991000003"


def by_name(report: LoadReport) -> dict[str, FileReport]:
    return {f.name: f for f in report.files}


def reload_all(app: Flask, sample_dir: Path, tmp_path: Path, mappings: Mappings, **options: Any) -> list[LoadReport]:
    return [load(app, source, sample_dir / source, mappings, rejects=tmp_path, **options) for source in SOURCES]


def settled(new_app: Callable[[], Flask], sample_dir: Path, tmp_path: Path, mappings: Mappings) -> Flask:
    """An app with every sample loaded and reloaded once (so each row's ledger entry names the versions that
    the later sources' loads left)."""
    app = new_app()
    load_all(app, sample_dir, tmp_path, mappings)
    reload_all(app, sample_dir, tmp_path, mappings)
    return app


def put(app: Flask, resource: dict[str, Any]) -> None:
    api = app.extensions["sharedcare"]
    path = f"{resource['resourceType']}/{resource['id']}"
    response = api.handle(FhirRequest(method="PUT", path=path, body=resource), Caller.system("test"))
    assert response.status == 200, response.body


def test_a_reload_skips_every_unchanged_row_and_writes_nothing(new_app: Callable[[], Flask], sample_dir: Path,
                                                               mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load_all(app, sample_dir, tmp_path, mappings)
    before = versions(app)
    first = reload_all(app, sample_dir, tmp_path, mappings)
    assert versions(app) == before
    # rows whose Patient a later source changed (it added its identifier) are compared in full once
    assert sum(f.skipped for r in first for f in r.files) > 0
    second = reload_all(app, sample_dir, tmp_path, mappings)
    assert versions(app) == before
    for report in second:
        for f in report.files:
            assert f.skipped == f.loaded == f.rows - f.rejected - f.held, report.render()
        counts = report.by_type()
        assert all(c["created"] == c["updated"] == c["ended"] == 0 for c in counts.values()), report.render()
        assert "unchanged since their last load" in report.render()


def test_a_reload_reports_the_same_resources_as_a_full_comparison(new_app: Callable[[], Flask], sample_dir: Path,
                                                                  mappings: Mappings, tmp_path: Path) -> None:
    app = settled(new_app, sample_dir, tmp_path, mappings)
    skipping = reload_all(app, sample_dir, tmp_path, mappings)
    full = reload_all(app, sample_dir, tmp_path, mappings, skip_unchanged=False)
    assert all(f.skipped == 0 for r in full for f in r.files)
    for fast, slow in zip(skipping, full, strict=True):
        assert fast.by_type() == slow.by_type()
        assert [(f.name, f.loaded, f.rejected, f.held) for f in fast.files] == \
            [(f.name, f.loaded, f.rejected, f.held) for f in slow.files]


def test_a_resource_changed_through_the_api_brings_its_row_back(new_app: Callable[[], Flask], sample_dir: Path,
                                                                mappings: Mappings, tmp_path: Path) -> None:
    app = settled(new_app, sample_dir, tmp_path, mappings)
    [jean] = search(app, "Patient", identifier=f"{NHS}|{JEAN}")
    medicine = search(app, "MedicationRequest", patient=f"Patient/{jean['id']}", status="active")[0]
    put(app, {**medicine, "status": "on-hold"})
    report = load(app, "gp", sample_dir / "gp", mappings, rejects=tmp_path)
    medications = by_name(report)["medications.csv"]
    assert medications.skipped == medications.loaded - 1, report.render()
    assert medications.outcomes["MedicationRequest"]["updated"] == 1
    restored = search(app, "MedicationRequest", _id=medicine["id"])[0]
    assert restored["status"] == "active" and restored["meta"]["versionId"] == "3"


def test_a_reference_resolving_elsewhere_brings_its_row_back(new_app: Callable[[], Flask], sample_dir: Path,
                                                             mappings: Mappings, tmp_path: Path) -> None:
    app = settled(new_app, sample_dir, tmp_path, mappings)
    [jean] = search(app, "Patient", identifier=f"{NHS}|{JEAN}")
    spells = [e for e in search(app, "Encounter", patient=f"Patient/{jean['id']}") if e["class"]["code"] == "IMP"]
    # Jean's NHS number moves to another Patient: the hospital rows found by it follow, they are not skipped
    api = app.extensions["sharedcare"]
    moved = {"resourceType": "Patient", "identifier": [{"system": NHS, "value": JEAN}]}
    response = api.handle(FhirRequest(method="POST", path="Patient", body=moved), Caller.system("test"))
    assert response.status == 201, response.body
    put(app, {**jean, "identifier": [i for i in jean["identifier"] if i["system"] != NHS]})
    report = load(app, "hospital", sample_dir / "hospital", mappings, rejects=tmp_path)
    admissions = by_name(report)["admissions.csv"]
    assert admissions.skipped == admissions.loaded - len(spells) > 0, report.render()
    assert admissions.outcomes["Encounter"]["updated"] == len(spells) == 5
    [new] = search(app, "Patient", identifier=f"{NHS}|{JEAN}")
    assert {e["id"] for e in search(app, "Encounter", patient=f"Patient/{new['id']}")} >= {e["id"] for e in spells}


def test_a_changed_mapping_maps_every_row_of_its_file_again(new_app: Callable[[], Flask], sample_dir: Path,
                                                            mappings: Mappings, tmp_path: Path) -> None:
    app = settled(new_app, sample_dir, tmp_path, mappings)
    raw = copy.deepcopy(raw_spec("swift", "events.yaml"))
    raw["resources"][0]["template"]["language"] = "en-GB"
    changed = Mappings(mappings.terminology, dict(mappings.specs))
    spec = parse("mappings/swift/events.yaml", raw, mappings.terminology, load_systems())
    for name in spec.files:
        changed.specs[("swift", name)] = spec
    report = load(app, "swift", sample_dir / "swift", changed, rejects=tmp_path)
    files = by_name(report)
    assert files["events.csv"].skipped == 0 and files["events.csv"].loaded > 0
    assert files["events.csv"].outcomes["Encounter"]["updated"] == files["events.csv"].loaded
    assert files["clients.csv"].skipped == files["clients.csv"].loaded  # the other files' rows still skip
    again = by_name(load(app, "swift", sample_dir / "swift", changed, rejects=tmp_path))
    assert again["events.csv"].skipped == again["events.csv"].loaded
    english = [e for e in search(app, "Encounter") if e.get("language") == "en-GB"]
    assert len(english) == files["events.csv"].loaded


def test_ledger_entries_name_the_versions_written(new_app: Callable[[], Flask], sample_dir: Path,
                                                  mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    report = load(app, "swift", sample_dir / "swift", mappings, rejects=tmp_path)

    ledger = LoadLedger(app.extensions["sharedcare"].services.database)
    entries = {key: orjson.loads(entry) for key, (_digest, entry) in
               ledger.entries("swift/E0900001/services.csv").items()}
    assert len(entries) == by_name(report)["services.csv"].loaded > 0
    for entry in entries.values():
        [(kind, rid, version)] = entry["w"]
        assert kind == "EpisodeOfCare"
        assert search(app, "EpisodeOfCare", _id=rid)[0]["meta"]["versionId"] == str(version)
        assert "Patient" in [r[0] for r in entry["r"]]


def test_rows_gone_from_a_snapshot_leave_the_ledger(new_app: Callable[[], Flask], sample_dir: Path,
                                                   mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load(app, "swift", sample_dir / "swift", mappings, rejects=tmp_path)
    ledger = LoadLedger(app.extensions["sharedcare"].services.database)
    before = set(ledger.entries("swift/E0900001/services.csv"))
    later = copy_extract(sample_dir, tmp_path / "later", SWIFT, "2026-11-30")
    gone = sorted(before)[0]
    edit_csv(later / "services.csv", keep=lambda row: row["Service_ID"] != gone)
    report = load(app, "swift", later, mappings, rejects=tmp_path)
    assert by_name(report)["services.csv"].outcomes["EpisodeOfCare"]["ended"] == 1, report.render()
    assert set(ledger.entries("swift/E0900001/services.csv")) == before - {gone}


def test_rows_writing_one_patient_together_are_never_skipped(new_app: Callable[[], Flask], sample_dir: Path,
                                                            mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    folder = copy_extract(sample_dir, tmp_path / "twice", SWIFT, "2026-10-31")
    with (folder / "clients.csv").open(encoding="utf-8-sig", newline="") as handle:
        jean = next(row for row in csv.DictReader(handle) if row["Person_ID"] == "SW100234")
    edit_csv(folder / "clients.csv", add=[{**jean, "Person_ID": "SW999999", "Postcode": "ZZ9 9ZZ"}])
    for _ in range(2):
        report = load(app, "swift", folder, mappings, rejects=tmp_path)
    clients = by_name(report)["clients.csv"]
    assert clients.skipped == clients.loaded - 2, report.render()  # both of Jean's rows map in file order
    ledger = LoadLedger(app.extensions["sharedcare"].services.database)
    assert {"SW100234", "SW999999"}.isdisjoint(ledger.entries("swift/E0900001/clients.csv"))
    [patient] = search(app, "Patient", identifier=f"{NHS}|{JEAN}")
    assert patient["address"][0]["postalCode"] == "ZZ9 9ZZ"  # the later row's demographics, as a full load


def test_a_long_row_id_rejected_next_month_keeps_what_it_wrote(new_app: Callable[[], Flask], sample_dir: Path,
                                                               mappings: Mappings, tmp_path: Path) -> None:
    app = new_app()
    load(app, "gp", sample_dir / "gp", mappings, rejects=tmp_path)
    long_id = "E" + "9" * 300
    first = copy_extract(sample_dir, tmp_path / "first", GP, "2026-11")
    edit_csv(first / "coded_entries.csv", change=lambda row: row.update(entry_id=long_id) if row["entry_id"] == "E1"
             else None)
    load(app, "gp", first, mappings, rejects=tmp_path)
    [condition] = [c for c in search(app, "Condition") if any(i["value"] == long_id for i in c["identifier"])]
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    later = copy_extract(sample_dir, tmp_path / "later", GP, "2026-12")
    edit_csv(later / "coded_entries.csv", change=lambda row: row.update(entry_id=long_id, effective_date="bad")
             if row["entry_id"] == "E1" else None)
    report = load(app, "gp", later, mappings, rejects=tmp_path)
    assert by_name(report)["coded_entries.csv"].rejected == 1, report.render()
    kept = search(app, "Condition", _id=condition["id"])[0]
    assert kept["clinicalStatus"]["coding"][0]["code"] == "active"  # its rejected row protects it
