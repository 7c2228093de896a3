"""The fictional area: practices and their GPs, hospital trusts, the council and its care homes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .rng import Weighted, make_rng
from .tables import Tables

COUNCIL = "E0900001"
PROVIDERS = ("RX999", "RX998")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True, slots=True)
class Practice:
    index: int
    ods: str
    town: str
    district: str  # postcode district, e.g. ZZ3
    gps: tuple[str, ...]  # GMC numbers
    legacy: str  # "", "READV2" or "CTV3": the code system of entries recorded before April 2018
    trust: int  # index into PROVIDERS


@dataclass(frozen=True, slots=True)
class CareHome:
    index: int
    name: str
    nursing: bool
    town: str
    postcode: str
    address: str
    hes_code: str  # ADMISORC / DISDEST: 85 non-NHS care home, 65 LA residential, 54 NHS care home
    weekly_cost: float


@dataclass(frozen=True)
class Area:
    practices: tuple[Practice, ...]
    practice_pick: Weighted[int]
    care_homes: tuple[CareHome, ...]
    nursing_homes: tuple[CareHome, ...]
    residential_homes: tuple[CareHome, ...]
    towns: tuple[str, ...]
    streets: tuple[str, ...]
    home_care: tuple[str, ...]
    workers: tuple[str, ...]


def postcode(district: str, a: int, b: int, c: int) -> str:
    letters = POSTCODE_LETTERS
    return f"{district} {a % 9 + 1}{letters[b % len(letters)]}{letters[c % len(letters)]}"


def build_area(tables: Tables, seed: int, patients: int, practices: int) -> Area:
    rng = make_rng(seed, "area")
    towns = tables.places["town"]
    practice_list = []
    weights = []
    for i in range(practices):
        size = math.exp(rng.gauss(0.0, 0.45))
        weights.append(size)
        n_gps = 3 + int(size * 2.5)
        gps = tuple(f"9{(i * 40 + j) % 1_000_000:06d}" for j in range(n_gps))
        legacy = ("", "READV2", "CTV3")[i % 3]
        trust = 0 if practices == 1 or i < math.ceil(practices * 0.7) else 1
        practice_list.append(Practice(i, f"Y9{i + 1:04d}", towns[i % len(towns)], f"ZZ{i % 9 + 1}", gps,
                                      legacy, trust))
    n_homes = max(4, round(patients / 3500))
    names = tables.places["care_home"]
    homes = []
    for h in range(n_homes):
        nursing = h % 5 in (0, 2)  # 40 % of homes are nursing homes
        practice = practice_list[h % practices]
        base = names[h % len(names)] + ("" if h < len(names) else f" {h // len(names) + 1}")
        name = base + (" Nursing Home" if nursing else " Care Home")
        code = "85" if rng.random() < 0.85 else ("54" if nursing else "65")
        cost_lo, cost_hi = (980.0, 1280.0) if nursing else (760.0, 980.0)
        pc = postcode(practice.district, rng.randrange(9), rng.randrange(400), rng.randrange(400))
        homes.append(CareHome(h, name, nursing, practice.town, pc, f"{name}, {practice.town}", code,
                              round(rng.uniform(cost_lo, cost_hi), 2)))
    home_care = tuple(f"{t} {n}" if n == "Home Care Ltd" else n
                      for t, n in zip(towns, tables.places["home_care"], strict=False))
    return Area(
        practices=tuple(practice_list),
        practice_pick=Weighted(list(range(practices)), weights),
        care_homes=tuple(homes),
        nursing_homes=tuple(h for h in homes if h.nursing),
        residential_homes=tuple(h for h in homes if not h.nursing),
        towns=towns,
        streets=tables.places["street"],
        home_care=home_care,
        workers=tables.places["worker"],
    )
