"""Plausibility rules: a row that converts but cannot be true is rejected with its line, column and reason, while
the good rows of the same file load and nothing of the bad row is written."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from mappings import Mappings

from .conftest import load, search, versions
from .test_rejects import read_rejects

B = "https://sharedcare.example.org/fhir"
FOLDERS = {"gp": "gp/Y90001/2026-10", "swift": "swift/E0900001/2026-10-31", "hospital": "hospital/RX999/2026-10"}
PATIENT_ID = f"{B}/Id/gp-patient-id/Y90001"

# (source, file, sample row id, changes (the row's id column first), rejected column, words of the reason)
CASES = [
    # no date in the future of the extract date (a monthly GP or hospital extract runs to the end of its month)
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9001", "date_of_birth": "2099-03-14"},
     "date_of_birth", "2099-03-14 is after the extract date (2026-10-31)"),
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9002", "date_of_birth": "2026-11-01"},
     "date_of_birth", "2026-11-01 is after the extract date (2026-10-31)"),
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9003", "registration_date": "2026-11-01"},
     "registration_date", "is after the extract date"),
    ("gp", "medications.csv", "M24", {"entry_id": "M901", "authorised_date": "2026-11-02", "last_issue_date": ""},
     "authorised_date", "2026-11-02 is after the extract date (2026-10-31)"),
    ("gp", "consultations.csv", "C6", {"consultation_id": "C901", "date": "2027-01-04"},
     "date", "2027-01-04 is after the extract date (2026-10-31)"),
    ("gp", "coded_entries.csv", "E13", {"entry_id": "E901", "effective_date": "2026-11-30"},
     "effective_date", "is after the extract date"),
    ("swift", "clients.csv", "SW100590", {"Person_ID": "SW9001", "NHS_Number": "", "Date_Of_Birth": "01/11/2026"},
     "Date_Of_Birth", "2026-11-01 is after the extract date (2026-10-31)"),
    ("swift", "services.csv", "SV5001", {"Service_ID": "SV9001", "Service_Start_Date": "01/11/2026"},
     "Service_Start_Date", "2026-11-01 is after the extract date (2026-10-31)"),
    ("swift", "services.csv", "SV5001", {"Service_ID": "SV9002", "Last_Modified": "01/11/2026 00:30"},
     "Last_Modified", "is after the extract date (2026-10-31)"),
    ("swift", "events.csv", "EV9003", {"Event_ID": "EV9901", "Event_Start_Date": "05/11/2026", "Event_End_Date": ""},
     "Event_Start_Date", "2026-11-05 is after the extract date (2026-10-31)"),
    ("hospital", "admissions.csv", "S7008", {"SPELL_ID": "S9001", "ADMIDATE": "2026-11-01"},
     "ADMIDATE", "2026-11-01 is after the extract date (2026-10-31)"),
    ("hospital", "ae_attendances.csv", "A3004", {"ATTENDANCE_ID": "A9001", "ARRIVAL_DATETIME": "2026-11-01T00:10",
                                                 "DEPARTURE_DATETIME": "", "DISPOSAL": ""},
     "ARRIVAL_DATETIME", "2026-11-01T00:10:00+00:00 is after the extract date (2026-10-31)"),
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9008", "date_of_death": "2026-11-05"},
     "date_of_death", "2026-11-05 is after the extract date (2026-10-31)"),
    ("gp", "medications.csv", "M24", {"entry_id": "M905", "last_issue_date": "2026-11-03"},
     "last_issue_date", "2026-11-03 is after the extract date (2026-10-31)"),
    ("swift", "clients.csv", "SW100590", {"Person_ID": "SW9004", "NHS_Number": "", "Date_Of_Death": "02/11/2026"},
     "Date_Of_Death", "2026-11-02 is after the extract date (2026-10-31)"),
    ("hospital", "admissions.csv", "S7010", {"SPELL_ID": "S9003", "DISDATE": "2026-11-02"},
     "DISDATE", "2026-11-02 is after the extract date (2026-10-31)"),
    ("hospital", "ae_attendances.csv", "A3003", {"ATTENDANCE_ID": "A9003", "DEPARTURE_DATETIME": "2026-11-01T03:00"},
     "DEPARTURE_DATETIME", "2026-11-01T03:00:00+00:00 is after the extract date (2026-10-31)"),
    # an end never before its start
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9004", "deregistration_date": "2015-02-13"},
     "deregistration_date", "2015-02-13 is before registration_date (2015-02-14)"),
    ("gp", "medications.csv", "M24", {"entry_id": "M902", "end_date": "2021-12-31"},
     "end_date", "2021-12-31 is before authorised_date (2022-01-01)"),
    ("gp", "medications.csv", "M24", {"entry_id": "M903", "last_issue_date": "2021-12-01"},
     "last_issue_date", "2021-12-01 is before authorised_date (2022-01-01)"),
    ("gp", "coded_entries.csv", "E13", {"entry_id": "E902", "end_date": "1999-12-31", "status": "resolved"},
     "end_date", "1999-12-31 is before effective_date (2000-01-01)"),
    ("swift", "services.csv", "SV5001", {"Service_ID": "SV9003", "Service_End_Date": "02/03/2026"},
     "Service_End_Date", "2026-03-02 is before Service_Start_Date (2026-03-03)"),
    ("swift", "events.csv", "EV9001", {"Event_ID": "EV9902", "Event_End_Date": "19/02/2026"},
     "Event_End_Date", "2026-02-19 is before Event_Start_Date (2026-02-20)"),
    ("hospital", "admissions.csv", "S7010", {"SPELL_ID": "S9002", "DISDATE": "2026-05-04"},
     "DISDATE", "2026-05-04 is before ADMIDATE (2026-05-05)"),
    ("hospital", "ae_attendances.csv", "A3004", {"ATTENDANCE_ID": "A9002", "DEPARTURE_DATETIME": "2026-03-03T13:59"},
     "DEPARTURE_DATETIME", "2026-03-03T13:59:00+00:00 is before ARRIVAL_DATETIME (2026-03-03T14:00:00+00:00)"),
    # death not before birth
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9005", "date_of_death": "1990-11-04"},
     "date_of_death", "1990-11-04 is before date_of_birth (1990-11-05)"),
    ("swift", "clients.csv", "SW100590", {"Person_ID": "SW9002", "NHS_Number": "", "Date_Of_Death": "29/12/1939"},
     "Date_Of_Death", "1939-12-29 is before Date_Of_Birth (1939-12-30)"),
    # ages at most 125 (at death, else at the extract date)
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9006", "date_of_birth": "1900-10-31"},
     "date_of_birth", "1900-10-31 makes an age of 126 years at the extract date (2026-10-31), over 125"),
    ("gp", "patients.csv", "P1004", {"gp_patient_id": "P9007", "date_of_birth": "1850-01-01",
                                     "date_of_death": "1990-06-01"},
     "date_of_birth", "makes an age of 140 years at date_of_death (1990-06-01), over 125"),
    ("swift", "clients.csv", "SW100590", {"Person_ID": "SW9003", "NHS_Number": "", "Date_Of_Birth": "01/01/1890"},
     "Date_Of_Birth", "makes an age of 136 years at the extract date (2026-10-31), over 125"),
    # quantities and planned units non-negative and within a bound per unit
    ("gp", "medications.csv", "M24", {"entry_id": "M904", "quantity": "-3"},
     "quantity", "-3 is below the least allowed, 0"),
    ("swift", "services.csv", "SV5001", {"Service_ID": "SV9004", "Planned_Units_Per_Week": "-3"},
     "Planned_Units_Per_Week", "-3 is below the least allowed, 0"),
    ("swift", "services.csv", "SV5001", {"Service_ID": "SV9005", "Planned_Units_Per_Week": "168.5"},
     "Planned_Units_Per_Week", "168.5 is over the most allowed for Unit_Type Hours, 168"),
    ("swift", "services.csv", "SV5006", {"Service_ID": "SV9006", "Planned_Units_Per_Week": "8"},
     "Planned_Units_Per_Week", "8 is over the most allowed for Unit_Type Days, 7"),
    ("swift", "services.csv", "SV5002", {"Service_ID": "SV9007", "Planned_Units_Per_Week": "2"},
     "Planned_Units_Per_Week", "2 is over the most allowed for Unit_Type Weeks, 1"),
    ("swift", "services.csv", "SV5006", {"Service_ID": "SV9009", "Unit_Type": "Nights",
                                         "Planned_Units_Per_Week": "7.5"},
     "Planned_Units_Per_Week", "7.5 is over the most allowed for Unit_Type Nights, 7"),
    ("swift", "services.csv", "SV5006", {"Service_ID": "SV9010", "Unit_Type": "Sessions",
                                         "Planned_Units_Per_Week": "22"},
     "Planned_Units_Per_Week", "22 is over the most allowed for Unit_Type Sessions, 21"),
    ("swift", "services.csv", "SV5006", {"Service_ID": "SV9011", "Unit_Type": "Meals",
                                         "Planned_Units_Per_Week": "29"},
     "Planned_Units_Per_Week", "29 is over the most allowed for Unit_Type Meals, 28"),
    ("swift", "services.csv", "SV5001", {"Service_ID": "SV9008", "Weekly_Cost": "-241.50"},
     "Weekly_Cost", "-241.5 is below the least allowed, 0"),
]


def sample_rows(sample_dir: Path, source: str, name: str) -> tuple[list[str], list[list[str]]]:
    with (sample_dir / FOLDERS[source] / name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows])
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def variant(header: list[str], rows: list[list[str]], row_id: str, changes: dict[str, str]) -> list[str]:
    """A copy of the sample row with that id (in the column changed first), changed."""
    key = header.index(next(iter(changes)))
    row = list(next(r for r in rows if r[key] == row_id))
    for column, value in changes.items():
        row[header.index(column)] = value
    return row


@pytest.fixture(scope="module")
def record(new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings,
           tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The sample extracts loaded, so every bad row's people are known and its good rows are unchanged."""
    app = new_app()
    rejects = tmp_path_factory.mktemp("sample-rejects")
    for source in ("gp", "swift", "hospital"):
        report = load(app, source, sample_dir / source, mappings, rejects=rejects)
        assert report.exit_code() == 0, report.render()
    return app


@pytest.mark.parametrize(("source", "name", "row_id", "changes", "column", "reason"), CASES,
                         ids=[f"{c[1]}-{c[4]}-{next(iter(c[3].values()))}" for c in CASES])
def test_an_implausible_row_is_rejected_and_the_good_rows_load(
        record: Flask, sample_dir: Path, mappings: Mappings, tmp_path: Path, source: str, name: str, row_id: str,
        changes: dict[str, str], column: str, reason: str) -> None:
    header, rows = sample_rows(sample_dir, source, name)
    bad = variant(header, rows, row_id, changes)
    middle = len(rows) // 2
    path = write_rows(tmp_path / FOLDERS[source] / name, header, [*rows[:middle], bad, *rows[middle:]])
    before = versions(record)
    report = load(record, source, path, mappings, rejects=tmp_path / "out", snapshot=False)
    [file] = report.files
    assert (file.rows, file.loaded, file.rejected, file.held) == (len(rows) + 1, len(rows), 1, 0), report.render()
    [reject] = read_rejects(file.rejects_file)  # type: ignore[arg-type]
    assert int(reject["line"]) == middle + 2  # the header is line 1
    assert reject["column"] == column
    assert reason in reject["reason"], reject["reason"]
    assert next(csv.reader([reject["row"]])) == bad
    assert versions(record) == before + 1  # the file's Provenance only: the good rows were unchanged, the bad one
    # wrote nothing


def test_values_on_the_bounds_load(record: Flask, sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    """A date on the extract date, an end on its start, an age of exactly 125, zero and the most a week holds."""
    header, rows = sample_rows(sample_dir, "gp", "patients.csv")
    edge = [variant(header, rows, "P1004", {"gp_patient_id": "P9101", "nhs_number": "9991020004",
                                           "date_of_birth": "1901-10-31", "registration_date": "2026-10-31"}),
            variant(header, rows, "P1004", {"gp_patient_id": "P9102", "nhs_number": "9991020071",
                                           "deregistration_date": "2015-02-14", "date_of_death": "1990-11-05"})]
    path = write_rows(tmp_path / FOLDERS["gp"] / "patients.csv", header, [*rows, *edge])
    [file] = load(record, "gp", path, mappings, rejects=tmp_path, snapshot=False).files
    assert (file.loaded, file.rejected) == (len(rows) + 2, 0)
    [oldest] = search(record, "Patient", identifier=f"{PATIENT_ID}|P9101")
    assert oldest["birthDate"] == "1901-10-31"
    header, rows = sample_rows(sample_dir, "swift", "services.csv")
    edge = [variant(header, rows, "SV5001", {"Service_ID": "SV9101", "Planned_Units_Per_Week": "168",
                                            "Service_End_Date": "03/03/2026", "Status": "Ended"}),
            variant(header, rows, "SV5006", {"Service_ID": "SV9102", "Planned_Units_Per_Week": "0",
                                            "Weekly_Cost": "0", "Service_Start_Date": "31/10/2026",
                                            "Last_Modified": "31/10/2026 23:59"})]
    path = write_rows(tmp_path / FOLDERS["swift"] / "services.csv", header, [*rows, *edge])
    [file] = load(record, "swift", path, mappings, rejects=tmp_path, snapshot=False).files
    assert (file.loaded, file.rejected) == (len(rows) + 2, 0)


def test_a_row_the_ledger_skips_is_checked_again_against_a_later_extract_date(
        record: Flask, sample_dir: Path, mappings: Mappings, tmp_path: Path) -> None:
    """Unchanged rows are skipped, not mapped again; an age still grows with the extract date."""
    header, rows = sample_rows(sample_dir, "gp", "patients.csv")
    old = variant(header, rows, "P1004", {"gp_patient_id": "P9201", "nhs_number": "9991020144",
                                         "date_of_birth": "1901-11-15"})
    first = write_rows(tmp_path / "gp/Y90001/2026-10/patients.csv", header, [old])
    [file] = load(record, "gp", first, mappings, rejects=tmp_path, snapshot=False).files
    assert (file.loaded, file.rejected) == (1, 0)
    again = write_rows(tmp_path / "gp/Y90001/2026-12/patients.csv", header, [old])  # aged 125: still plausible
    [file] = load(record, "gp", again, mappings, rejects=tmp_path, snapshot=False).files
    assert (file.loaded, file.skipped, file.rejected) == (1, 1, 0)
    later = write_rows(tmp_path / "gp/Y90001/2027-11/patients.csv", header, [old])  # 126
    [file] = load(record, "gp", later, mappings, rejects=tmp_path / "out", snapshot=False).files
    assert (file.loaded, file.skipped, file.rejected) == (0, 0, 1)
    [reject] = read_rejects(file.rejects_file)  # type: ignore[arg-type]
    assert reject["column"] == "date_of_birth"
    assert "an age of 126 years at the extract date (2027-11-30), over 125" in reject["reason"]


def test_an_extract_date_that_is_no_date_refuses_the_file(record: Flask, sample_dir: Path, mappings: Mappings,
                                                          tmp_path: Path) -> None:
    header, rows = sample_rows(sample_dir, "gp", "patients.csv")
    path = write_rows(tmp_path / "gp/Y90001/2026-13/patients.csv", header, rows)
    before = versions(record)
    [file] = load(record, "gp", path, mappings, rejects=tmp_path).files
    assert file.fault == "'2026-13' is not a real date (YYYY-MM): use the folder layout or pass --extract-date"
    assert versions(record) == before
