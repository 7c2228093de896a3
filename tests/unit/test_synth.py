"""Tests of the synthetic population generator (loaders.synth): layout, determinism, realism and noise."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from loaders.synth import NoiseRates, SynthSummary, generate
from loaders.synth.nhs import is_valid

MONTH = "2026-10"
E = date(2026, 10, 31)

# The contract (extracts.md), written out here independently of the generator's own layout module.
HEADERS = {
    "patients.csv": ["nhs_number", "practice_ods", "gp_patient_id", "family_name", "given_name", "date_of_birth",
                     "sex", "postcode", "address_line", "telecom", "registration_date", "deregistration_date",
                     "date_of_death", "usual_gp_gmc"],
    "coded_entries.csv": ["entry_id", "nhs_number", "entry_type", "code_system", "code", "term", "effective_date",
                          "status", "end_date"],
    "medications.csv": ["entry_id", "nhs_number", "dmd_code", "drug_name", "prescription_type", "status",
                        "authorised_date", "end_date", "last_issue_date", "dosage", "quantity", "quantity_unit"],
    "consultations.csv": ["consultation_id", "nhs_number", "date", "type", "clinician_gmc"],
    "clients.csv": ["Person_ID", "NHS_Number", "Family_Name", "Given_Name", "Date_Of_Birth", "Gender", "Postcode",
                    "Accommodation_Status", "Primary_Support_Reason", "Has_Unpaid_Carer", "Date_Of_Death"],
    "services.csv": ["Service_ID", "Person_ID", "Service_Type", "Service_Component", "Delivery_Mechanism",
                     "Provider_Name", "Service_Start_Date", "Service_End_Date", "Planned_Units_Per_Week", "Unit_Type",
                     "Weekly_Cost", "Status", "Reason_For_Change", "Last_Modified"],
    "events.csv": ["Event_ID", "Person_ID", "Event_Type", "Event_Start_Date", "Event_End_Date", "Event_Outcome",
                   "Worker_Name", "Team"],
    "admissions.csv": ["SPELL_ID", "NHS_NUMBER", "PROCODE", "ADMIDATE", "ADMIMETH", "ADMISORC", "DISDATE", "DISMETH",
                       "DISDEST", "CLASSPAT", "MAINSPEF", *[f"DIAG_4_{i:02d}" for i in range(1, 21)]],
    "ae_attendances.csv": ["ATTENDANCE_ID", "NHS_NUMBER", "PROCODE", "ARRIVAL_DATETIME", "DEPARTURE_DATETIME",
                           "DISPOSAL", "CHIEF_COMPLAINT_SNOMED"],
}
HEADERS["services_changes.csv"] = HEADERS["services.csv"]

# What a strict loader checks, per file: required columns, date columns, code lists, NHS number and id columns.
REQUIRED = {
    "patients.csv": ["nhs_number", "practice_ods", "gp_patient_id", "family_name", "given_name", "date_of_birth",
                     "sex", "registration_date"],
    "coded_entries.csv": ["entry_id", "nhs_number", "entry_type", "code_system", "code", "term", "effective_date"],
    "medications.csv": ["entry_id", "nhs_number", "drug_name", "prescription_type", "status", "authorised_date"],
    "consultations.csv": ["consultation_id", "nhs_number", "date", "type"],
    "clients.csv": ["Person_ID", "Family_Name", "Given_Name", "Date_Of_Birth", "Gender"],
    "services.csv": ["Service_ID", "Person_ID", "Service_Type", "Service_Component", "Service_Start_Date", "Status",
                     "Last_Modified"],
    "events.csv": ["Event_ID", "Person_ID", "Event_Type", "Event_Start_Date"],
    "admissions.csv": ["SPELL_ID", "NHS_NUMBER", "PROCODE", "ADMIDATE", "ADMIMETH", "DIAG_4_01"],
    "ae_attendances.csv": ["ATTENDANCE_ID", "NHS_NUMBER", "PROCODE", "ARRIVAL_DATETIME"],
}
REQUIRED["services_changes.csv"] = REQUIRED["services.csv"]
DATES = {
    "patients.csv": {"date_of_birth": "%Y-%m-%d", "registration_date": "%Y-%m-%d", "deregistration_date": "%Y-%m-%d",
                     "date_of_death": "%Y-%m-%d"},
    "coded_entries.csv": {"effective_date": "%Y-%m-%d", "end_date": "%Y-%m-%d"},
    "medications.csv": {"authorised_date": "%Y-%m-%d", "end_date": "%Y-%m-%d", "last_issue_date": "%Y-%m-%d"},
    "consultations.csv": {"date": "%Y-%m-%d"},
    "clients.csv": {"Date_Of_Birth": "%d/%m/%Y", "Date_Of_Death": "%d/%m/%Y"},
    "services.csv": {"Service_Start_Date": "%d/%m/%Y", "Service_End_Date": "%d/%m/%Y",
                     "Last_Modified": "%d/%m/%Y %H:%M"},
    "events.csv": {"Event_Start_Date": "%d/%m/%Y", "Event_End_Date": "%d/%m/%Y"},
    "admissions.csv": {"ADMIDATE": "%Y-%m-%d", "DISDATE": "%Y-%m-%d"},
    "ae_attendances.csv": {"ARRIVAL_DATETIME": "%Y-%m-%dT%H:%M", "DEPARTURE_DATETIME": "%Y-%m-%dT%H:%M"},
}
DATES["services_changes.csv"] = DATES["services.csv"]
EMERGENCY = {"21", "22", "23", "24", "25", "28", "2A", "2B", "2C", "2D"}
ADMIMETH = EMERGENCY | {"11", "12", "13", "31", "32", "81", "82", "83", "98", "99"}
CODES = {
    "patients.csv": {"sex": {"M", "F", "I", "U"}},
    "coded_entries.csv": {"entry_type": {"problem", "finding"}, "code_system": {"SNOMED", "READV2", "CTV3"},
                          "status": {"", "active", "past", "resolved"}},
    "medications.csv": {"prescription_type": {"acute", "repeat", "repeat-dispensing"},
                        "status": {"active", "ended", "cancelled"}},
    "consultations.csv": {"type": {"surgery", "home-visit", "telephone", "video"}},
    "clients.csv": {"Gender": {"Male", "Female", "Other", "Unknown"}, "Has_Unpaid_Carer": {"", "Y", "N"}},
    "services.csv": {"Status": {"Active", "Suspended", "Ended"},
                     "Unit_Type": {"", "Hours", "Days", "Nights", "Sessions", "Meals", "Weeks"}},
    "events.csv": {"Event_Type": {"Request", "Assessment", "Service", "Review"}},
    "admissions.csv": {"ADMIMETH": ADMIMETH},
    "ae_attendances.csv": {"DISPOSAL": {"", "admitted", "discharged", "referred", "died", "left"}},
}
CODES["services_changes.csv"] = CODES["services.csv"]
NHS_COL = {"patients.csv": "nhs_number", "coded_entries.csv": "nhs_number", "medications.csv": "nhs_number",
           "consultations.csv": "nhs_number", "clients.csv": "NHS_Number", "admissions.csv": "NHS_NUMBER",
           "ae_attendances.csv": "NHS_NUMBER"}

# CLD values listed in standards.md (SWIFT extract vocabulary).
CLD_SERVICE_TYPE = {"Long Term Support: Nursing Care", "Long Term Support: Residential Care",
                    "Long Term Support: Community", "Long Term Support: Prison", "Short Term Support: ST-Max",
                    "Short Term Support: Ongoing Low Level", "Short Term Support: Other Short Term",
                    "Carer Support: Direct to Carer", "Carer Support: Support involving the person cared-for"}
CLD_COMPONENT = {"Reablement", "Short Term Nursing Care", "Long Term Nursing Care", "Short Term Residential Care",
                 "Long Term Residential Care", "Home Support", "Day Support", "Meals", "Transport", "Equipment",
                 "Direct Payment", "Shared Lives", "Community Supported Living", "Professional Support",
                 "End of Life Care"}
CLD_DELIVERY = {"", "Direct Payment", "CASSR Managed Personal Budget", "CASSR Commissioned Support"}
CLD_PSR_PREFIXES = ("Physical Support: ", "Sensory Support: ", "Support with Memory & Cognition",
                    "Learning Disability Support", "Mental Health Support", "Social Support: ")


# ----------------------------------------------------------------------------------------------- helpers


def read(root: Path, pattern: str, encoding: str = "utf-8-sig") -> Iterator[dict[str, str]]:
    for path in sorted(root.glob(pattern)):
        with path.open(encoding=encoding, newline="") as fh:
            yield from csv.DictReader(fh)


def nhs(value: str) -> str:
    return value.replace(" ", "")


def age_on(dob: str, day: date = E) -> float:
    return (day - date.fromisoformat(dob)).days / 365.25


def problems(root: Path, summary: SynthSummary) -> set[tuple[str, int, str]]:
    """What a strict loader would reject, as (file, line, reason), reading each file in its encoding."""
    found: set[tuple[str, int, str]] = set()
    for info in summary.files:
        name = info.name
        seen: set[str] = set()
        id_col = HEADERS[name][0]
        with (root / info.path).open(encoding=info.encoding, newline="") as fh:
            reader = csv.DictReader(fh)
            assert reader.fieldnames == HEADERS[name], info.path
            for row in reader:
                line = reader.line_num
                kinds = set()
                for col in REQUIRED[name]:
                    if not row[col].strip():
                        kinds.add("missing_required")
                col = NHS_COL.get(name)
                if col and row[col].strip() and not is_valid(row[col]):
                    kinds.add("bad_nhs_check_digit")
                for col, fmt in DATES[name].items():
                    if row[col]:
                        try:
                            datetime.strptime(row[col], fmt)
                        except ValueError:
                            kinds.add("bad_date")
                for col, allowed in CODES[name].items():
                    if row[col] and row[col] not in allowed:
                        kinds.add("unknown_code")
                if row[id_col] in seen:
                    kinds.add("duplicate_id")
                seen.add(row[id_col])
                found.update((info.path, line, k) for k in kinds)
    return found


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, patients=3000, practices=4, seed=7, noise=NoiseRates.none())


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("noisy")
    rates = NoiseRates(nhs_spaces=0.05, swift_blank_nhs=0.05, crlf_files=0.5, cp1252_files=1.0, utf8_bom_files=0.5,
                       bad_nhs_check_digit=0.01, bad_date=0.01, unknown_code=0.01, missing_required=0.01,
                       duplicate_id=0.01, future_date=0.0, end_before_start=0.0, death_before_birth=0.0,
                       implausible_age=0.0, bad_quantity=0.0)  # implausible rows: tests/loaders/test_synthetic.py
    return out, generate(out, patients=800, practices=3, seed=11, noise=rates)


@pytest.fixture(scope="module")
def two_months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("two")
    return out, generate(out, patients=1500, practices=3, seed=5, months=2, noise=NoiseRates.none())


# ----------------------------------------------------------------------------------------------- layout


def test_layout_and_headers_match_the_contract(clean: tuple[Path, SynthSummary]) -> None:
    root, summary = clean
    assert summary.practices == ["Y90001", "Y90002", "Y90003", "Y90004"]
    expected = {f"gp/{ods}/{MONTH}/{name}" for ods in summary.practices
                for name in ("patients.csv", "coded_entries.csv", "medications.csv", "consultations.csv")}
    expected |= {f"swift/E0900001/2026-10-31/{name}" for name in ("clients.csv", "services.csv", "events.csv")}
    expected |= {f"hospital/{code}/{MONTH}/{name}" for code in ("RX999", "RX998")
                 for name in ("admissions.csv", "ae_attendances.csv")}
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == expected == {f.path for f in summary.files}
    for info in summary.files:
        with (root / info.path).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == HEADERS[info.name], info.path
        assert len(rows) - 1 == info.rows > 0, info.path
        assert all(len(r) == len(rows[0]) for r in rows)


def test_headers_match_the_shared_samples(sample_dir: Path) -> None:
    for path in sample_dir.rglob("*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            assert next(csv.reader(fh)) == HEADERS[path.name], path


# ----------------------------------------------------------------------------------------------- determinism


def _run_in_subprocess(out: Path, seed: int) -> None:
    code = ("import sys; from pathlib import Path; from loaders.synth import generate; "
            "generate(Path(sys.argv[1]), patients=300, practices=2, seed=int(sys.argv[2]), months=2)")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(out), str(seed)], check=True, env=env,
                   cwd=Path(__file__).resolve().parents[2])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", patients=300, practices=2, seed=3, months=2)
    _run_in_subprocess(tmp_path / "b", 3)  # another process, another hash seed
    generate(tmp_path / "c", patients=300, practices=2, seed=4, months=2)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith("patients.csv"))


def test_first_month_does_not_depend_on_how_many_months_follow(
        tmp_path: Path, two_months: tuple[Path, SynthSummary]) -> None:
    root, _ = two_months
    generate(tmp_path, patients=1500, practices=3, seed=5, months=1, noise=NoiseRates.none())
    one = _tree(tmp_path)
    both = _tree(root)
    assert one == {k: v for k, v in both.items() if k in one}
    assert len(one) < len(both)


# ----------------------------------------------------------------------------------------------- validity


def test_noise_free_output_is_valid(clean: tuple[Path, SynthSummary]) -> None:
    root, summary = clean
    assert summary.invalid == []
    assert problems(root, summary) == set()
    for info in summary.files:
        data = (root / info.path).read_bytes()
        assert info.encoding == "utf-8" and info.line_ending == "LF"
        assert b"\r\n" not in data and not data.startswith(b"\xef\xbb\xbf")
        data.decode("utf-8")
        col = NHS_COL.get(info.name)
        if col:
            rows = list(read(root, info.path))
            assert all(r[col] and " " not in r[col] for r in rows), info.path


def test_nhs_numbers_are_valid_test_numbers_unique_per_person(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    who: dict[str, tuple[str, str, str]] = {}
    for r in read(root, "gp/*/*/patients.csv"):
        n = r["nhs_number"]
        assert n.startswith("999") and is_valid(n)
        person = (r["family_name"], r["given_name"], r["date_of_birth"])
        assert who.setdefault(n, person) == person
    for r in read(root, "swift/*/*/clients.csv"):
        if r["NHS_Number"]:
            assert is_valid(r["NHS_Number"])
            dob = datetime.strptime(r["Date_Of_Birth"], "%d/%m/%Y").date().isoformat()
            person = (r["Family_Name"], r["Given_Name"], dob)
            assert who.setdefault(r["NHS_Number"], person) == person
    for pattern in ("gp/*/*/coded_entries.csv", "hospital/*/*/admissions.csv", "hospital/*/*/ae_attendances.csv"):
        for r in read(root, pattern):
            assert is_valid(r.get("nhs_number") or r["NHS_NUMBER"])


def test_invalid_rows_are_exactly_the_injected_ones(noisy: tuple[Path, SynthSummary]) -> None:
    root, summary = noisy
    injected = {(r.path, r.line, r.kind) for r in summary.invalid}
    kinds = Counter(r.kind for r in summary.invalid)
    assert set(kinds) == {"bad_nhs_check_digit", "bad_date", "unknown_code", "missing_required", "duplicate_id"}
    assert problems(root, summary) == injected
    assert sum(f.invalid_rows for f in summary.files) == len(summary.invalid)
    assert summary.invalid_by_kind() == dict(kinds)
    as_json = json.loads(json.dumps(summary.to_dict()))
    assert len(as_json["invalid"]) == len(summary.invalid) and as_json["files"][0]["path"] == summary.files[0].path


def test_nhs_numbers_valid_except_injected_bad_ones(noisy: tuple[Path, SynthSummary]) -> None:
    root, summary = noisy
    bad = {(r.path, r.line) for r in summary.invalid if r.kind == "bad_nhs_check_digit"}
    spaced = 0
    for info in summary.files:
        col = NHS_COL.get(info.name)
        if col is None:
            continue
        with (root / info.path).open(encoding=info.encoding, newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                value = row[col]
                spaced += " " in value
                if value and not is_valid(value):
                    assert (info.path, reader.line_num) in bad
    assert spaced > 0
    assert bad


def test_formatting_noise_cp1252_crlf_bom_and_untraced_clients(noisy: tuple[Path, SynthSummary]) -> None:
    root, summary = noisy
    cp1252 = [f for f in summary.files if f.encoding == "cp1252"]
    assert {f.name for f in cp1252} == {"patients.csv", "clients.csv"}
    with_names = [f for f in cp1252 if f.non_ascii]
    assert with_names
    for f in with_names:
        data = (root / f.path).read_bytes()
        text = data.decode("cp1252")
        assert not text.isascii()
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    for f in summary.files:
        data = (root / f.path).read_bytes()
        assert (b"\r\n" in data) == (f.line_ending == "CRLF")
        assert data.startswith(b"\xef\xbb\xbf") == (f.encoding == "utf-8-sig")
    assert any(f.line_ending == "CRLF" for f in summary.files)
    clients = list(read(root, "swift/*/*/clients.csv", encoding="cp1252"))
    assert any(not r["NHS_Number"] for r in clients)


def test_noise_rates_validate() -> None:
    assert NoiseRates.none().invalid_total() == 0
    assert 0 < NoiseRates().invalid_total() <= 0.01
    with pytest.raises(ValueError):
        NoiseRates(bad_date=1.5)
    with pytest.raises(ValueError):
        generate(Path("unused"), patients=0, practices=1, seed=1)


# ----------------------------------------------------------------------------------------------- realism


def _current(root: Path) -> dict[str, dict[str, str]]:
    return {r["nhs_number"]: r for r in read(root, f"gp/*/{MONTH}/patients.csv")
            if not r["deregistration_date"] and not r["date_of_death"]}


def test_age_and_sex_structure_like_england(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    people = _current(root)
    ages = [age_on(r["date_of_birth"]) for r in people.values()]
    n = len(ages)
    assert 0.9 * 3000 < n <= 3000
    assert 0.15 <= sum(a >= 65 for a in ages) / n <= 0.23
    assert 0.012 <= sum(a >= 85 for a in ages) / n <= 0.04
    assert 0.17 <= sum(a < 18 for a in ages) / n <= 0.26
    old = [r for r in people.values() if age_on(r["date_of_birth"]) >= 80]
    assert sum(r["sex"] == "F" for r in old) / len(old) > 0.53


def test_deaths_mostly_old_and_deregistered(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    dead = [r for r in read(root, f"gp/*/{MONTH}/patients.csv") if r["date_of_death"]]
    assert 12 <= len(dead) <= 90  # about 1 % a year
    ages = [age_on(r["date_of_birth"], date.fromisoformat(r["date_of_death"])) for r in dead]
    assert sum(a >= 65 for a in ages) / len(ages) > 0.7
    assert sum(bool(r["deregistration_date"]) for r in dead) / len(dead) > 0.8
    for r in dead:
        if r["deregistration_date"]:
            assert r["deregistration_date"] >= r["date_of_death"]


def test_registrations_move_between_practices(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    regs: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in read(root, f"gp/*/{MONTH}/patients.csv"):
        regs[r["nhs_number"]].append(r)
    moved = [rs for rs in regs.values() if len({r["practice_ods"] for r in rs}) > 1]
    assert len(moved) >= 10
    for rs in moved:
        rs.sort(key=lambda r: r["registration_date"])
        assert rs[0]["deregistration_date"] and rs[0]["deregistration_date"] <= rs[1]["registration_date"]
        assert rs[0]["gp_patient_id"] != rs[1]["gp_patient_id"]
    recent = [r for r in regs.values() if r[-1]["registration_date"] >= "2025-11-01"]
    assert recent


def _conditions(root: Path) -> dict[str, set[str]]:
    conds: dict[str, set[str]] = defaultdict(set)
    for r in read(root, f"gp/*/{MONTH}/coded_entries.csv"):
        if r["entry_type"] == "problem" and r["status"] in ("", "active"):
            conds[r["nhs_number"]].add(r["term"])
    return conds


HYPERTENSION = {"Essential hypertension", "Hypertensive disorder, systemic arterial", "Hypertension"}
FINDINGS = {"Housebound", "Hearing loss", "Cataract", "Lives alone"}


def test_prevalence_and_multimorbidity_rise_with_age(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    people = _current(root)
    conds = _conditions(root)
    bands: dict[str, list[str]] = defaultdict(list)
    for n, r in people.items():
        a = age_on(r["date_of_birth"])
        bands["<45" if a < 45 else "45-64" if a < 65 else "65-79" if a < 80 else "80+"].append(n)

    def share(band: str, test: object) -> float:
        return sum(1 for n in bands[band] if test(conds.get(n, set()))) / len(bands[band])  # type: ignore[operator]

    def hyper(c: set[str]) -> bool:
        return bool(c & HYPERTENSION)

    def multi(c: set[str]) -> bool:
        return len(c - FINDINGS) >= 2

    assert share("<45", hyper) < 0.08
    assert share("<45", hyper) < share("45-64", hyper) < share("65-79", hyper) < share("80+", hyper)
    assert share("80+", hyper) > 0.45
    assert share("<45", multi) < share("45-64", multi) < share("65-79", multi) <= share("80+", multi) + 0.05
    assert share("80+", multi) > 0.4


def test_repeat_medicines_rise_with_conditions(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    people = _current(root)
    conds = _conditions(root)
    repeats: Counter[str] = Counter()
    statuses: Counter[tuple[str, str]] = Counter()
    for r in read(root, f"gp/*/{MONTH}/medications.csv"):
        statuses[(r["prescription_type"], r["status"])] += 1
        if r["status"] == "active" and r["prescription_type"] != "acute":
            repeats[r["nhs_number"]] += 1
    by_count: dict[int, list[int]] = defaultdict(list)
    for n in people:
        by_count[min(len(conds.get(n, set()) - FINDINGS), 5)].append(repeats[n])
    means = [statistics.mean(by_count[k]) for k in range(6)]
    assert means == sorted(means)
    assert means[0] < 0.5 and means[5] >= 7
    old = [n for n, r in people.items() if age_on(r["date_of_birth"]) >= 75]
    assert sum(repeats[n] >= 5 for n in old) / len(old) > 0.2
    for kind in (("acute", "ended"), ("repeat", "ended"), ("repeat", "cancelled"), ("repeat-dispensing", "active")):
        assert statuses[kind] > 0, kind


def test_consultations_rise_with_age_and_housebound_get_home_visits(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    people = _current(root)
    counts: Counter[str] = Counter()
    types: dict[str, Counter[str]] = defaultdict(Counter)
    for r in read(root, f"gp/*/{MONTH}/consultations.csv"):
        counts[r["nhs_number"]] += 1
        types[r["nhs_number"]][r["type"]] += 1
        assert "2025-11-01" <= r["date"] <= "2026-10-31"
    young = [counts[n] for n, r in people.items() if 18 <= age_on(r["date_of_birth"]) < 45]
    old = [counts[n] for n, r in people.items() if age_on(r["date_of_birth"]) >= 75]
    assert statistics.mean(old) > 2 * statistics.mean(young)
    housebound = {r["nhs_number"] for r in read(root, f"gp/*/{MONTH}/coded_entries.csv") if r["code"] == "160689007"}
    hb = Counter()
    for n in housebound:
        hb.update(types[n])
    assert hb["home-visit"] > hb["surgery"]
    assert {t for c in types.values() for t in c} == {"surgery", "home-visit", "telephone", "video"}


def test_emergency_admissions_concentrated_in_a_few_people(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    population = len(_current(root))
    emergency: Counter[str] = Counter()
    bed_days: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    still_in, care_home_discharges = 0, 0
    for r in read(root, f"hospital/*/{MONTH}/admissions.csv"):
        methods[r["ADMIMETH"]] += 1
        admitted = date.fromisoformat(r["ADMIDATE"])
        assert date(2024, 11, 1) <= admitted <= E
        if not r["DISDATE"]:
            still_in += 1
        if r["DISDEST"] in ("54", "65", "85"):
            care_home_discharges += 1
        if r["ADMIMETH"] in EMERGENCY:
            emergency[r["NHS_NUMBER"]] += 1
            out = date.fromisoformat(r["DISDATE"]) if r["DISDATE"] else E
            bed_days[r["NHS_NUMBER"]] += (out - admitted).days
    top = int(0.05 * population)
    assert sum(sorted(emergency.values(), reverse=True)[:top]) / sum(emergency.values()) > 0.5
    assert sum(sorted(bed_days.values(), reverse=True)[:top]) / sum(bed_days.values()) > 0.6
    assert 0.04 < len(emergency) / population < 0.25
    assert {"11", "12"} <= set(methods) and "21" in methods
    assert still_in > 0 and care_home_discharges > 0


def test_frail_elderly_codes_and_hospital_frailty_signals(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    dob = {r["nhs_number"]: r["date_of_birth"] for r in read(root, f"gp/*/{MONTH}/patients.csv")}
    old_codes: Counter[str] = Counter()
    young_codes: Counter[str] = Counter()
    for r in read(root, f"hospital/*/{MONTH}/admissions.csv"):
        codes = [r[f"DIAG_4_{i:02d}"] for i in range(1, 21) if r[f"DIAG_4_{i:02d}"]]
        assert all(3 < len(c) <= 5 for c in codes)
        if r["NHS_NUMBER"] in dob and age_on(dob[r["NHS_NUMBER"]]) >= 70:
            old_codes.update(codes)
        else:
            young_codes.update(codes)
    for code in ("E86X", "N390", "K590", "R11X", "J189", "S7200", "W19X"):
        assert old_codes[code] > 0, code
    falls = sum(v for k, v in old_codes.items() if k.startswith("W0") or k.startswith("W1"))
    assert falls > sum(v for k, v in young_codes.items() if k.startswith("W0") or k.startswith("W1"))
    ae = list(read(root, f"hospital/*/{MONTH}/ae_attendances.csv"))
    disposals = Counter(r["DISPOSAL"] for r in ae)
    assert disposals["admitted"] > 0.15 * len(ae) and disposals["discharged"] > 0


def test_care_home_residents_agree_across_gp_and_swift(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    patients = _current(root)
    finding: dict[str, str] = {}
    for r in read(root, f"gp/*/{MONTH}/coded_entries.csv"):
        if r["status"] in ("", "active") and r["code"] in ("160734000", "394923006"):
            finding[r["nhs_number"]] = "nursing" if r["code"] == "160734000" else "residential"
    clients = {r["NHS_Number"]: r for r in read(root, "swift/*/*/clients.csv") if r["NHS_Number"]}
    placements: dict[str, str] = {}
    person = {r["Person_ID"]: r["NHS_Number"] for r in clients.values()}
    for r in read(root, "swift/*/*/services.csv"):
        if r["Status"] != "Ended" and r["Service_Component"] in ("Long Term Nursing Care",
                                                                  "Long Term Residential Care"):
            placements[person[r["Person_ID"]]] = r["Provider_Name"]
    residents = 0
    for n, r in patients.items():
        address = r["address_line"]
        home = "nursing" if "Nursing Home" in address else "residential" if "Care Home" in address else "none"
        status = clients[n]["Accommodation_Status"] if n in clients else ""
        swift = {"Registered nursing home": "nursing", "Registered care home": "residential"}.get(status, "none")
        assert home == finding.get(n, "none") == swift, (n, address, status)
        if home != "none":
            residents += 1
            assert address.startswith(placements[n])
            assert clients[n]["Postcode"] == r["postcode"]
    assert residents >= 8


def test_social_care_packages_use_cld_values(clean: tuple[Path, SynthSummary]) -> None:
    root, _ = clean
    clients = list(read(root, "swift/*/*/clients.csv"))
    services = list(read(root, "swift/*/*/services.csv"))
    events = list(read(root, "swift/*/*/events.csv"))
    gp_numbers = {r["nhs_number"] for r in read(root, f"gp/*/{MONTH}/patients.csv")}
    assert any(r["NHS_Number"] and r["NHS_Number"] not in gp_numbers for r in clients)  # not on any GP list
    for r in clients:
        assert r["Primary_Support_Reason"].startswith(CLD_PSR_PREFIXES)
        assert r["Accommodation_Status"]
    assert {r["Service_Type"] for r in services} <= CLD_SERVICE_TYPE
    assert {r["Service_Component"] for r in services} <= CLD_COMPONENT
    assert {r["Delivery_Mechanism"] for r in services} <= CLD_DELIVERY
    components = Counter((r["Service_Component"], r["Status"]) for r in services)
    for key in (("Home Support", "Active"), ("Reablement", "Ended"), ("Long Term Residential Care", "Active"),
                ("Long Term Nursing Care", "Active"), ("Equipment", "Active")):
        assert components[key] > 0, key
    assert any(r["Status"] == "Ended" and r["Service_Component"] == "Home Support" for r in services)
    for r in services:
        if r["Service_Component"] == "Home Support":
            assert r["Unit_Type"] == "Hours" and float(r["Planned_Units_Per_Week"]) > 0
            assert float(r["Weekly_Cost"]) > 0 or r["Delivery_Mechanism"] == "Direct Payment"
        if r["Service_Component"] == "Reablement" and r["Status"] == "Ended":
            start = datetime.strptime(r["Service_Start_Date"], "%d/%m/%Y")
            assert (datetime.strptime(r["Service_End_Date"], "%d/%m/%Y") - start).days <= 42
        if r["Status"] == "Ended":
            assert r["Service_End_Date"] and r["Reason_For_Change"]
        else:
            assert not r["Service_End_Date"]
    assert {r["Event_Type"] for r in events} >= {"Request", "Assessment", "Review"}
    from loaders.synth.tables import load_tables

    cld = load_tables().cld  # the documented list of CLD values the generator uses
    assert {r["Accommodation_Status"] for r in clients} <= cld["Accommodation_Status"]
    assert {r["Primary_Support_Reason"] for r in clients} <= cld["Primary_Support_Reason"]
    assert {r["Event_Outcome"] for r in events} - {""} <= cld["Event_Outcome"]
    assert {r["Service_Component"] for r in services} <= cld["Service_Component"] <= CLD_COMPONENT
    assert cld["Service_Type"] <= CLD_SERVICE_TYPE
    ages = [(E - datetime.strptime(r["Date_Of_Birth"], "%d/%m/%Y").date()).days / 365.25 for r in clients]
    assert sum(a >= 65 for a in ages) / len(ages) > 0.7


def test_suspended_and_respite_packages(tmp_path: Path) -> None:
    summary = generate(tmp_path, patients=5000, practices=2, seed=21, months=2, noise=NoiseRates.none())
    assert summary.invalid == []
    suspended = 0
    for month_dir in ("2026-10-31", "2026-11-30"):
        month = "2026-10" if month_dir.startswith("2026-10") else "2026-11"
        person = {r["Person_ID"]: r["NHS_Number"] for r in read(tmp_path, f"swift/*/{month_dir}/clients.csv")}
        in_hospital = {r["NHS_NUMBER"] for r in read(tmp_path, f"hospital/*/{month}/admissions.csv")
                       if not r["DISDATE"]}
        for r in read(tmp_path, f"swift/*/{month_dir}/services.csv"):
            if r["Status"] == "Suspended":
                suspended += 1
                assert r["Reason_For_Change"] in ("In hospital", "Respite stay", "Client on holiday",
                                                  "Client request")
                if r["Reason_For_Change"] == "In hospital":
                    assert person[r["Person_ID"]] in in_hospital
            if r["Service_Component"] == "Short Term Residential Care":
                assert r["Service_Type"] == "Short Term Support: Other Short Term" and r["Unit_Type"] == "Nights"
    assert suspended >= 2


# ----------------------------------------------------------------------------------------------- months


def test_two_months_keep_ids_and_write_service_changes(two_months: tuple[Path, SynthSummary]) -> None:
    root, summary = two_months
    assert summary.months == ["2026-10", "2026-11"]
    first, second = "2026-10", "2026-11"
    assert not list(root.glob("swift/*/2026-10-31/services_changes.csv"))
    changes = list(read(root, "swift/*/2026-11-30/services_changes.csv"))
    before = {r["Service_ID"]: r for r in read(root, "swift/*/2026-10-31/services.csv")}
    after = {r["Service_ID"]: r for r in read(root, "swift/*/2026-11-30/services.csv")}
    assert changes
    for r in changes:
        assert after[r["Service_ID"]] == r
        assert before.get(r["Service_ID"]) != r
    assert {k for k in after if before.get(k) not in (None, after[k])} <= {r["Service_ID"] for r in changes}
    assert {k for k in after if k not in before} <= {r["Service_ID"] for r in changes}
    assert set(before) <= set(after)

    def ids(pattern: str, key: str) -> dict[str, dict[str, str]]:
        return {r[key]: r for r in read(root, pattern)}

    p1 = ids(f"gp/*/{first}/patients.csv", "gp_patient_id")
    p2 = ids(f"gp/*/{second}/patients.csv", "gp_patient_id")
    assert set(p1) <= set(p2) and len(p2) > len(p1)  # newcomers and new registrations
    for pid, r in p1.items():
        assert (p2[pid]["nhs_number"], p2[pid]["date_of_birth"], p2[pid]["registration_date"]) == (
            r["nhs_number"], r["date_of_birth"], r["registration_date"])
    changed = sum(p1[k] != p2[k] for k in p1)
    assert changed > 0  # deaths, moves, deregistrations
    e1 = ids(f"gp/*/{first}/coded_entries.csv", "entry_id")
    e2 = ids(f"gp/*/{second}/coded_entries.csv", "entry_id")
    kept = set(e1) & set(e2)
    assert len(kept) > 0.95 * len(e1)
    assert all(e1[k]["code"] == e2[k]["code"] and e1[k]["effective_date"] == e2[k]["effective_date"] for k in kept)
    assert any(r["effective_date"] >= "2026-11-01" for r in e2.values())  # new diagnoses or findings
    s1 = ids(f"hospital/*/{first}/admissions.csv", "SPELL_ID")
    s2 = ids(f"hospital/*/{second}/admissions.csv", "SPELL_ID")
    assert any(r["ADMIDATE"] >= "2026-11-01" for r in s2.values())  # new admissions
    for k, r in s1.items():
        if r["ADMIDATE"] >= "2024-12-01":
            assert s2[k]["ADMIDATE"] == r["ADMIDATE"] and s2[k]["DIAG_4_01"] == r["DIAG_4_01"]
            if r["DISDATE"]:
                assert s2[k]["DISDATE"] == r["DISDATE"]
    c1 = ids("swift/*/2026-10-31/clients.csv", "Person_ID")
    c2 = ids("swift/*/2026-11-30/clients.csv", "Person_ID")
    assert set(c1) <= set(c2)
    dead = [r for r in p2.values() if r["date_of_death"] >= "2026-11-01"]
    assert dead


def test_data_tables_load_and_names_fit_windows_1252() -> None:
    from loaders.synth.tables import load_tables

    t = load_tables()
    keys = {c.key for c in t.conditions}
    assert {"hypertension", "type2_diabetes", "copd", "heart_failure", "asthma", "atrial_fibrillation", "ckd",
            "dementia", "osteoporosis", "chd", "stroke", "depression", "osteoarthritis"} <= keys
    snomed = {v.snomed for c in t.conditions for v in c.variants.items}
    assert {"38341003", "59621000", "44054006", "13645005", "84114007", "195967001", "49436004", "709044004",
            "52448006", "64859006"} <= snomed
    assert {f.code.snomed for f in t.findings} >= {"160689007", "105529008", "161898004", "160734000", "394923006"}
    for weighted in t.names.values():
        for name in weighted.items:
            name.encode("cp1252")
    assert any(not n.isascii() for n in t.names["family"].items)
