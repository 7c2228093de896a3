"""The per-run context shared by the simulation and the renderers (tables, area, parameters, caches)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .area import Area
from .dates import DateFmt, month_end, month_start, ordinal
from .nhs import NhsAllocator
from .params import Params, per_year
from .rng import Weighted
from .tables import AgeBand, Diagnosis, Medicine, Tables

#: GP systems coded in SNOMED CT from April 2018; older entries may keep their Read code
SNOMED_FROM = (2018, 4, 1)
CARE_HOME_CODES = frozenset({"54", "65", "85"})
HISTORY_MONTHS = 24  # hospital and social care history in each snapshot, extract month included
CONSULT_MONTHS = 12  # consultations and acute medicines in each snapshot


@dataclass
class Context:
    tables: Tables
    area: Area
    params: Params
    seed: int  # the mixed run seed
    first_mi: int  # month index of the first extract
    allocator: NhsAllocator
    fmt: DateFmt = field(default_factory=DateFmt)
    # derived in __post_init__
    history_mi: int = field(init=False)  # first simulated month (the snapshot's history window)
    ref: int = field(init=False)  # first day of the first extract month
    snomed_from: int = field(init=False)

    def __post_init__(self) -> None:
        t = self.tables
        self.history_mi = self.first_mi - (HISTORY_MONTHS - 1)
        self.ref = month_start(self.first_mi)
        self.snomed_from = ordinal(*SNOMED_FROM)
        self._ms: dict[int, int] = {}
        self._me: dict[int, int] = {}
        bands = t.age_bands
        self.age_pick: Weighted[AgeBand] = Weighted(bands, [b.percent for b in bands])
        old = [b for b in bands if b.lo >= 65]
        self.old_pick: Weighted[AgeBand] = Weighted(old, [b.percent for b in old])
        adult = [b for b in bands if 18 <= b.lo < 65]
        self.adult_pick: Weighted[AgeBand] = Weighted(adult, [b.percent for b in adult])
        mover = [b for b in bands if b.lo >= 15]
        self.mover_pick: Weighted[AgeBand] = Weighted(
            mover, [b.percent * (3.0 if b.lo < 40 else 1.0) for b in mover])
        self.diag_pick: dict[str, Weighted[Diagnosis]] = {
            g: Weighted(ds, [d.weight for d in ds]) for g, ds in t.diagnoses.items()}
        acute = t.medicine_groups["acute"]
        self.acute_pick: Weighted[Medicine] = Weighted(acute, [m.prob for m in acute])
        statins = t.medicine_groups["statin"]
        self.statin_pick: Weighted[Medicine] = Weighted(statins, [m.prob for m in statins])
        self.admimeth_pick: Weighted[str] = Weighted(
            ["21", "22", "23", "24", "28", "2A", "2B", "2D"], [72, 10, 2, 4, 5, 3, 2, 2])
        self.elective_meth_pick: Weighted[str] = Weighted(["11", "12", "13"], [55, 35, 10])
        # arrival hour at the emergency department: about half of older people's admissions arrive 17:00-08:00
        self.hour_pick: Weighted[int] = Weighted(list(range(24)), [
            3, 2.5, 2, 1.8, 1.6, 1.6, 1.8, 2.5, 4, 5.5, 6.5, 6.5, 6.2, 6, 5.8, 5.8, 5.8, 6, 6.2, 6, 5.5, 5,
            4.4, 3.6])
        p = self.params
        self.death_by_age = per_year(p.death)
        self.emergency_by_age = per_year(p.emergency)
        self.elective_by_age = per_year(p.elective)
        self.ae_by_age = per_year(p.ae_only)
        self.consult_by_age = per_year(p.consultations)
        self.acute_by_age = per_year(p.acute_medicines)
        self.leave_by_age = per_year(p.leave_area)
        self.request_by_age = per_year(p.request_only)
        self.home_start_by_age = per_year(p.home_support_start)
        self.care_entry_by_age = per_year(p.care_home_entry)
        self.delivery_pick: Weighted[str] = Weighted(
            ["CASSR Commissioned Support", "Direct Payment", "CASSR Managed Personal Budget"], [75, 17, 8])

    def ms(self, mi: int) -> int:
        v = self._ms.get(mi)
        if v is None:
            v = self._ms[mi] = month_start(mi)
        return v

    def me(self, mi: int) -> int:
        v = self._me.get(mi)
        if v is None:
            v = self._me[mi] = month_end(mi)
        return v
