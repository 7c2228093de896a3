"""Bad rows are rejected with their reason while good rows load; file-level faults stop the file."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from loaders.cli import load_command
from mappings import Mappings

from .conftest import load, search, versions

B = "https://sharedcare.example.org/fhir"
PATIENTS_HEADER = ("nhs_number,practice_ods,gp_patient_id,family_name,given_name,date_of_birth,sex,postcode,"
                   "address_line,telecom,registration_date,deregistration_date,date_of_death,usual_gp_gmc")
GOOD = "9991000003,Y90001,P1001,Hardy,Jean,1934-03-14,F,ZZ1 1AA,\"1 Orchard Lane, Upton\",01632 960001,1980-05-01,,,"
BAD_ROWS = [  # (row, column, words in the reason)
    ("9991000004,Y90001,P2001,Bell,Ann,1941-07-02,F,,,,1999-01-11,,,", "nhs_number", "modulus 11"),
    ("9991001379,Y90001,P2002,Bell,Arthur,1941-02-30,M,,,,1999-01-11,,,", "date_of_birth", "not a real date"),
    ("9991004114,Y90001,P2003,Okafor,Margaret,1958-02-20,X,,,,2005-09-30,,,", "sex", "unknown code 'X'"),
    ("9991006850,Y90001,P2004,,David,1990-11-05,M,,,,2015-02-14,,,", "family_name", "a value is required"),
    ("9991008225,Y90001,P1001,Clarke,Edith,1948-06-09,F,,,,1970-03-03,,,", "gp_patient_id", "duplicate id"),
    ("9991011013,Y90001,P2006,Pr\xe9ce,Harold,1955-01-27,M,,,,1988-08-08,,,", "", "undecodable bytes"),
]


def write(path: Path, lines: list[str], encoding: str = "cp1252") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_each_class_of_bad_row_is_rejected_with_its_reason(new_app: Callable[[], Flask], mappings: Mappings,
                                                           tmp_path: Path) -> None:
    app = new_app()
    lines = [PATIENTS_HEADER, GOOD, *[row for row, _c, _w in BAD_ROWS],
             "9991009590,Y90001,P1006,Price,Harold,1955-01-27,M,,,,1988-08-08,,,"]
    path = write(tmp_path / "gp/Y90001/2026-10/patients.csv", lines)
    report = load(app, "gp", path, mappings, rejects=tmp_path / "out", encoding="utf-8")
    [file] = report.files
    assert (file.rows, file.loaded, file.rejected) == (8, 2, 6)
    assert report.exit_code() == 1
    rejects = read_rejects(file.rejects_file)  # type: ignore[arg-type]
    assert [int(r["line"]) for r in rejects] == [3, 4, 5, 6, 7, 8]
    for reject, (row, column, words) in zip(rejects, BAD_ROWS, strict=True):
        assert reject["column"] == column and words in reject["reason"], reject
        assert reject["row"] == row.replace("\xe9", "\ufffd")
    assert "already on line 2" in rejects[4]["reason"]
    assert len(search(app, "Patient")) == 2
    # the same file read as Windows-1252 loads Harold's second row too (the encoding setting is the user's)
    report = load(app, "gp", path, mappings, rejects=tmp_path / "out", encoding="cp1252")
    assert report.files[0].rejected == 5 and "Pr\xe9ce" in [p["name"][0]["family"] for p in search(app, "Patient")]


def test_bad_rows_of_swift_and_hospital_files(new_app: Callable[[], Flask], sample_dir: Path, mappings: Mappings,
                                              tmp_path: Path) -> None:
    app = new_app()
    load(app, "gp", sample_dir / "gp", mappings, rejects=tmp_path)
    load(app, "swift", sample_dir / "swift" / "E0900001/2026-10-31/clients.csv", mappings, rejects=tmp_path)
    services = (sample_dir / "swift/E0900001/2026-10-31/services.csv").read_text("utf-8").splitlines()
    bad = [
        services[1].replace(",Active,", ",Paused,"),
        services[2].replace("03/03/2026 11:00", "31/04/2026 11:00").replace("SV5002", "SV5102"),
        services[3].replace("SV5003", "SV5103").replace("Long Term Nursing Care", "Gardening"),
        services[4].replace("SV5004", "SV5104").replace("17/09/2026,7", ",7"),  # Ended without an end date
    ]
    path = write(tmp_path / "swift/E0900001/2026-11-30/services.csv", [services[0], *bad, *services[5:]], "utf-8")
    report = load(app, "swift", path, mappings, rejects=tmp_path / "out", snapshot=False)
    rejects = read_rejects(report.files[0].rejects_file)  # type: ignore[arg-type]
    assert [(r["line"], r["column"]) for r in rejects] == [
        ("2", "Status"), ("3", "Last_Modified"), ("4", "Service_Component"), ("5", "Service_End_Date")]
    assert "unknown code 'Paused'" in rejects[0]["reason"] and "a value is required when Status is Ended" in \
        rejects[3]["reason"]
    assert report.files[0].loaded == 3
    admissions = (sample_dir / "hospital/RX999/2026-10/admissions.csv").read_text("utf-8").splitlines()
    bad = [admissions[1].replace(",21,19,", ",77,19,"), admissions[2].replace("S7200", "7200")]
    path = write(tmp_path / "hospital/RX999/2026-11/admissions.csv", [admissions[0], *bad], "utf-8")
    report = load(app, "hospital", path, mappings, rejects=tmp_path / "out")
    rejects = read_rejects(report.files[0].rejects_file)  # type: ignore[arg-type]
    assert [(r["column"], "unknown code '77'" in r["reason"] or "ICD-10" in r["reason"]) for r in rejects] == [
        ("ADMIMETH", True), ("DIAG_4_01", True)]


@pytest.mark.parametrize(("lines", "encoding", "message"), [
    ([PATIENTS_HEADER.replace(",sex,", ","), GOOD.replace(",F,", ",")], "utf-8", "missing required column: sex"),
    ([PATIENTS_HEADER.replace(",", ";"), GOOD.replace(",", ";")], "utf-8", "delimited by ';'"),
    ([PATIENTS_HEADER.replace(",", "\t"), GOOD.replace(",", "\t")], "utf-8", "delimited by tab"),
    ([PATIENTS_HEADER, GOOD], "no-such-codec", "unknown encoding"),
    ([], "utf-8", "empty"),
])
def test_a_file_level_fault_stops_the_file_before_anything_is_written(
        new_app: Callable[[], Flask], mappings: Mappings, tmp_path: Path, lines: list[str], encoding: str,
        message: str) -> None:
    app = new_app()
    before = versions(app)
    path = write(tmp_path / "gp/Y90001/2026-10/patients.csv", lines, "utf-8") if lines else \
        (tmp_path / "gp/Y90001/2026-10").mkdir(parents=True) or (tmp_path / "gp/Y90001/2026-10/patients.csv")
    if not lines:
        path.write_bytes(b"")
    report = load(app, "gp", path, mappings, rejects=tmp_path / "out", encoding=encoding)
    [file] = report.files
    assert file.fault is not None and message in file.fault, file.fault
    assert report.exit_code() == 2 and file.rows == 0
    assert versions(app) == before  # not even the Provenance or the practice


def test_utf8_bom_file_read_as_windows_1252_is_a_file_fault(new_app: Callable[[], Flask], mappings: Mappings,
                                                            tmp_path: Path) -> None:
    app = new_app()
    path = tmp_path / "gp/Y90001/2026-10/patients.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xef\xbb\xbf" + f"{PATIENTS_HEADER}\n{GOOD}\n".encode())
    [file] = load(app, "gp", path, mappings, rejects=tmp_path, encoding="cp1252").files
    assert file.fault is not None and "utf-8-sig" in file.fault
    [file] = load(app, "gp", path, mappings, rejects=tmp_path).files  # the default utf-8-sig reads it
    assert file.fault is None and file.loaded == 1


def test_cli_exit_codes_and_summary(new_app: Callable[[], Flask], sample_dir: Path, tmp_path: Path) -> None:
    app = new_app()
    env = {"DATABASE_URL": app.extensions["sharedcare.settings"].database_url}
    runner = CliRunner()
    clean = runner.invoke(load_command, ["gp", str(sample_dir / "gp"), "--quiet", "--rejects", str(tmp_path)],
                          env=env)
    assert clean.exit_code == 0, clean.output
    assert "patients.csv: 6 rows read, 6 loaded, 0 rejected, 0 held" in clean.output
    assert "Patient" in clean.output and "created" in clean.output
    bad = write(tmp_path / "gp/Y90001/2026-11/patients.csv", [PATIENTS_HEADER, GOOD, BAD_ROWS[0][0]], "utf-8")
    rejected = runner.invoke(load_command, ["gp", str(bad), "--quiet", "--rejects", str(tmp_path / "r")], env=env)
    assert rejected.exit_code == 1, rejected.output
    assert "1 rejected" in rejected.output and (tmp_path / "r").is_dir()
    refused = runner.invoke(load_command, ["gp", str(bad), "--quiet", "--encoding", "klingon"], env=env)
    assert refused.exit_code == 2 and "unknown encoding" in refused.output
    dry = runner.invoke(load_command, ["swift", str(sample_dir / "swift"), "--quiet", "--dry-run",
                                       "--rejects", str(tmp_path)], env=env)
    assert dry.exit_code == 0 and "dry run" in dry.output, dry.output
    assert search(app, "EpisodeOfCare") == []
