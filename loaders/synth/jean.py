"""Jean's rows: the case study of the source documents (90, living alone, five admissions in nine months), added
to a generated area's GP, SWIFT and hospital extracts so that the demo tells her story."""

from __future__ import annotations

import csv
from pathlib import Path

NHS_NUMBER = "9991000003"
NAME = "Jean Hardy"
PRACTICE = "Y90001"
HOSPITAL = "RX999"
COUNCIL = "E0900001"
SWIFT_ID = "SW100234"
HOME_CARE = "SV5001"
ENROLLED = "2026-10-20"  # screened and enrolled by the locality's case manager after her fifth discharge

PATIENT = [NHS_NUMBER, PRACTICE, "P1001", "Hardy", "Jean", "1936-03-14", "F", "ZZ1 1AA", "1 Orchard Lane, Upton",
           "01632 960001", "1980-05-01", "", "", "9000000"]
CODED = [
    ["E1", "problem", "44054006", "Type 2 diabetes mellitus", "2001-04-10"],
    ["E2", "problem", "84114007", "Heart failure", "2015-09-01"],
    ["E3", "problem", "13645005", "Chronic obstructive lung disease", "2010-01-20"],
    ["E4", "problem", "64859006", "Osteoporosis", "2018-06-15"],
    ["E5", "finding", "161898004", "Falls", "2026-02-03"],
    ["E6", "finding", "160689007", "Housebound", "2026-03-01"],
    ["E7", "finding", "105529008", "Lives alone", "2019-01-01"],
]
MEDICINES = ["Metformin 500mg tablets", "Furosemide 40mg tablets", "Ramipril 5mg capsules", "Bisoprolol 2.5mg tablets",
             "Tiotropium 18microgram inhalation powder capsules", "Salbutamol 100micrograms/dose inhaler",
             "Alendronic acid 70mg tablets", "Adcal-D3 chewable tablets", "Atorvastatin 20mg tablets",
             "Paracetamol 500mg tablets", "Lansoprazole 15mg capsules", "Senna 7.5mg tablets"]
CONSULTATIONS = [("2026-05-02", "home-visit"), ("2026-06-11", "home-visit"), ("2026-07-19", "telephone"),
                 ("2026-08-03", "home-visit"), ("2026-09-14", "home-visit"), ("2026-10-21", "home-visit")]
# five emergency admissions in nine months, over ten weeks in hospital
ADMISSIONS = [
    ("S7001", "2026-01-12", "2026-01-20", "300", ["N390", "E119", "I509"]),
    ("S7002", "2026-02-03", "2026-02-16", "300", ["S7200", "W19X", "M819"]),
    ("S7003", "2026-04-22", "2026-05-06", "300", ["E86X", "N390"]),
    ("S7004", "2026-07-08", "2026-07-29", "340", ["J441", "J449"]),
    ("S7005", "2026-09-16", "2026-10-09", "320", ["I500", "E86X"]),
]
AE = [("A3001", "2026-01-12T02:14", "2026-01-12T07:40"), ("A3002", "2026-02-03T19:05", "2026-02-04T01:10")]
CLIENT = [SWIFT_ID, "999 100 0003", "Hardy", "Jean", "14/03/1936", "Female", "ZZ1 1AA",
          "Owner occupier or shared ownership scheme", "Physical Support: Personal care support", "N", ""]
EVENTS = [
    ["EV9001", SWIFT_ID, "Assessment", "20/02/2026", "27/02/2026", "Support Planning / Services", "A. Khan",
     "Upton Adult Social Care"],
    ["EV9002", SWIFT_ID, "Review", "08/10/2026", "12/10/2026", "Provision of service", "A. Khan",
     "Upton Adult Social Care"],
]
EQUIPMENT = ["SV5002", SWIFT_ID, "Long Term Support: Community", "Equipment", "CASSR Commissioned Support",
             "Telecare Services", "03/03/2026", "", "1", "Weeks", "4.20", "Active", "", "03/03/2026 11:00"]


def home_care(month: int) -> list[str]:
    """Her home care: 10.5 hours a week after the fall; 14 hours once her case manager's review asked for more."""
    if month == 0:
        return [HOME_CARE, SWIFT_ID, "Long Term Support: Community", "Home Support", "CASSR Commissioned Support",
                "Upton Home Care Ltd", "03/03/2026", "", "10.5", "Hours", "241.50", "Active", "Increase after fall",
                "12/10/2026 09:30"]
    return [HOME_CARE, SWIFT_ID, "Long Term Support: Community", "Home Support", "CASSR Commissioned Support",
            "Upton Home Care Ltd", "03/03/2026", "", "14", "Hours", "322.00", "Active",
            "Increase after case management review", "06/11/2026 10:15"]


def rows(month: int) -> dict[str, list[list[str]]]:
    """Her rows by extract file (`source/name`) in the k-th monthly snapshot (0: the first)."""
    diag_cols = 20
    return {
        "gp/patients.csv": [PATIENT],
        "gp/coded_entries.csv": [[e, NHS_NUMBER, kind, "SNOMED", code, term, day, "active", ""]
                                 for e, kind, code, term, day in CODED],
        "gp/medications.csv": [[f"M{i + 1}", NHS_NUMBER, "", drug, "repeat", "active", f"2025-01-{i + 2:02d}", "",
                                "2026-10-02", "As directed", "56", "tablet"] for i, drug in enumerate(MEDICINES)],
        "gp/consultations.csv": [[f"C{i + 1}", NHS_NUMBER, day, kind, "9000000"]
                                 for i, (day, kind) in enumerate(CONSULTATIONS)],
        "hospital/admissions.csv": [[spell, NHS_NUMBER, HOSPITAL, admitted, "21", "19", discharged, "1", "19", "1",
                                     specialty, *diags, *[""] * (diag_cols - len(diags))]
                                    for spell, admitted, discharged, specialty, diags in ADMISSIONS],
        "hospital/ae_attendances.csv": [[a, NHS_NUMBER, HOSPITAL, arrived, left, "admitted", ""]
                                        for a, arrived, left in AE],
        "swift/clients.csv": [CLIENT],
        "swift/services.csv": [home_care(month), EQUIPMENT],
        "swift/events.csv": EVENTS,
        **({"swift/services_changes.csv": [home_care(month)]} if month > 0 else {}),
    }


def add_jean(out: Path, summary: object) -> None:
    """Append Jean's rows to every snapshot of a generated area (her NHS number must be free in it)."""
    months: list[str] = summary.months  # type: ignore[attr-defined]
    for k, label in enumerate(months):
        folders = {"gp": out / "gp" / PRACTICE / label, "hospital": out / "hospital" / HOSPITAL / label,
                   "swift": next((out / "swift" / COUNCIL).glob(f"{label}-*"))}
        if NHS_NUMBER.encode() in (folders["gp"] / "patients.csv").read_bytes():
            raise ValueError(f"the area already holds NHS number {NHS_NUMBER}: choose another seed or size")
        for key, lines in rows(k).items():
            source, name = key.split("/")
            append_rows(folders[source] / name, lines)


def append_rows(path: Path, lines: list[list[str]]) -> None:
    """Append rows to an extract file in its own line ending (the rows are ASCII, so any of its encodings)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    ending = "\r\n" if b"\r\n" in head else "\n"
    with open(path, "a", encoding="ascii", newline="") as handle:
        csv.writer(handle, lineterminator=ending).writerows(lines)
