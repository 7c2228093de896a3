"""Reference tables (ages, conditions, findings, medicines, diagnoses, names, places) read from data/."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .rng import Weighted

#: age-band lower bounds used by the condition prevalence columns
PREVALENCE_BANDS = (0, 18, 45, 65, 75, 85)


@dataclass(frozen=True, slots=True)
class AgeBand:
    lo: int
    hi: int
    percent: float
    female_share: float


@dataclass(frozen=True, slots=True)
class Code:
    """One concept with its SNOMED CT, Read v2 and CTV3 codings (legacy ones may be blank)."""

    snomed: str
    snomed_term: str
    readv2: str
    readv2_term: str
    ctv3: str
    ctv3_term: str
    icd10: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    index: int
    variants: Weighted[Code]
    female_rr: float
    male_rr: float
    min_age: int
    prevalence: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    key: str
    index: int
    entry_type: str
    code: Code


@dataclass(frozen=True, slots=True)
class Medicine:
    index: int
    group: str
    drug_name: str
    prob: float
    dosage: str
    quantity: str
    quantity_unit: str
    days: int


@dataclass(frozen=True, slots=True)
class Diagnosis:
    group: str
    code: str
    term: str
    weight: float
    mainspef: str
    los_mean: float
    requires: str
    secondaries: tuple[tuple[str, ...], ...]
    min_age: int
    sex: str
    ae_snomed: str


@dataclass(frozen=True, slots=True)
class Tables:
    age_bands: tuple[AgeBand, ...]
    conditions: tuple[Condition, ...]
    condition_by_key: dict[str, Condition]
    findings: tuple[Finding, ...]
    finding_by_key: dict[str, Finding]
    medicines: tuple[Medicine, ...]
    medicine_groups: dict[str, tuple[Medicine, ...]]
    diagnoses: dict[str, tuple[Diagnosis, ...]]
    names: dict[str, Weighted[str]]
    places: dict[str, tuple[str, ...]]
    complaints: Weighted[str]
    cld: dict[str, frozenset[str]]


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _code(r: dict[str, str]) -> Code:
    return Code(r["snomed"], r["snomed_term"], r["readv2"], r["readv2_term"], r["ctv3"], r["ctv3_term"],
                r.get("icd10", ""))


def _conditions() -> tuple[Condition, ...]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for r in _rows("conditions.csv"):
        grouped.setdefault(r["key"], []).append(r)
    out = []
    for i, (key, rows) in enumerate(grouped.items()):
        first = rows[0]
        prevalence = tuple(float(first[c]) for c in
                           ("p_0_17", "p_18_44", "p_45_64", "p_65_74", "p_75_84", "p_85"))
        out.append(Condition(key, i, Weighted([_code(r) for r in rows], [float(r["weight"]) for r in rows]),
                             float(first["female_rr"]), float(first["male_rr"]), int(first["min_age"]),
                             prevalence))
    return tuple(out)


def _diagnoses() -> dict[str, tuple[Diagnosis, ...]]:
    out: dict[str, list[Diagnosis]] = {}
    for r in _rows("diagnoses.csv"):
        slots = tuple(tuple(s.split("/")) for s in r["secondaries"].split("|") if s)
        out.setdefault(r["group"], []).append(Diagnosis(
            r["group"], r["code"], r["term"], float(r["weight"]), r["mainspef"], float(r["los_mean"]),
            r["requires"], slots, int(r["min_age"]), r["sex"], r["ae_snomed"]))
    return {k: tuple(v) for k, v in out.items()}


@cache
def load_tables() -> Tables:
    """Read every table once per process (nothing is read at import time)."""
    bands = tuple(AgeBand(int(r["lo"]), int(r["hi"]), float(r["percent"]), float(r["female_share"]))
                  for r in _rows("age_bands.csv"))
    conditions = _conditions()
    findings = tuple(Finding(r["key"], i, r["entry_type"], _code(r))
                     for i, r in enumerate(_rows("findings.csv")))
    medicines = tuple(Medicine(i, r["group"], r["drug_name"], float(r["prob"]), r["dosage"], r["quantity"],
                               r["quantity_unit"], int(r["days"]))
                      for i, r in enumerate(_rows("medicines.csv")))
    groups: dict[str, list[Medicine]] = {}
    for m in medicines:
        groups.setdefault(m.group, []).append(m)
    name_rows: dict[str, tuple[list[str], list[float]]] = {}
    for r in _rows("names.csv"):
        items, weights = name_rows.setdefault(r["kind"], ([], []))
        items.append(r["name"])
        weights.append(float(r["weight"]))
    places: dict[str, list[str]] = {}
    for r in _rows("places.csv"):
        places.setdefault(r["kind"], []).append(r["name"])
    complaint_rows = _rows("ae_complaints.csv")
    cld: dict[str, set[str]] = {}
    for r in _rows("cld_values.csv"):
        cld.setdefault(r["field"], set()).add(r["value"])
    return Tables(
        age_bands=bands,
        conditions=conditions,
        condition_by_key={c.key: c for c in conditions},
        findings=findings,
        finding_by_key={f.key: f for f in findings},
        medicines=medicines,
        medicine_groups={k: tuple(v) for k, v in groups.items()},
        diagnoses=_diagnoses(),
        names={k: Weighted(v[0], v[1]) for k, v in name_rows.items()},
        places={k: tuple(v) for k, v in places.items()},
        complaints=Weighted([r["snomed"] for r in complaint_rows], [float(r["weight"]) for r in complaint_rows]),
        cld={k: frozenset(v) for k, v in cld.items()},
    )
