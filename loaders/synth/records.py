"""The simulated state of one person: registrations, GP entries, spells, social care; all dates are ordinals."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tables import Code, Medicine

ACTIVE, SUSPENDED, ENDED = "Active", "Suspended", "Ended"


class Coded:
    """A problem or finding on the GP record."""

    __slots__ = ("code", "effective", "end", "end_status", "entry_type", "legacy_u", "seq")

    def __init__(self, seq: int, entry_type: str, code: Code, effective: int, legacy_u: float) -> None:
        self.seq = seq
        self.entry_type = entry_type
        self.code = code
        self.effective = effective
        self.end: int | None = None
        self.end_status = "resolved"
        self.legacy_u = legacy_u


class Med:
    """A medication authorisation (repeat, repeat-dispensing or acute)."""

    __slots__ = ("authorised", "end", "end_status", "med", "ptype", "seq")

    def __init__(self, seq: int, med: Medicine, ptype: str, authorised: int, end: int | None = None,
                 end_status: str = "ended") -> None:
        self.seq = seq
        self.med = med
        self.ptype = ptype
        self.authorised = authorised
        self.end = end
        self.end_status = end_status


class Reg:
    """A registration with a practice."""

    __slots__ = ("end", "gmc", "no", "practice", "start")

    def __init__(self, no: int, practice: int, start: int, gmc: str) -> None:
        self.no = no
        self.practice = practice
        self.start = start
        self.end: int | None = None
        self.gmc = gmc


class Spell:
    """A hospital provider spell (HES admitted patient care)."""

    __slots__ = ("admidate", "admimeth", "admisorc", "classpat", "diags", "disdate", "disdest", "dismeth",
                 "mainspef", "provider", "seq")

    def __init__(self, seq: int, provider: int, admidate: int, admimeth: str, admisorc: str, disdate: int,
                 classpat: str, mainspef: str, diags: list[str]) -> None:
        self.seq = seq
        self.provider = provider
        self.admidate = admidate
        self.admimeth = admimeth
        self.admisorc = admisorc
        self.disdate = disdate
        self.dismeth = "1"
        self.disdest = "19"
        self.classpat = classpat
        self.mainspef = mainspef
        self.diags = diags


class Attendance:
    """An emergency department attendance."""

    __slots__ = ("arr_min", "arrival", "complaint", "dep_min", "departure", "disposal", "provider", "seq")

    def __init__(self, seq: int, provider: int, arrival: int, arr_min: int, departure: int, dep_min: int,
                 disposal: str, complaint: str) -> None:
        self.seq = seq
        self.provider = provider
        self.arrival = arrival
        self.arr_min = arr_min
        self.departure = departure
        self.dep_min = dep_min
        self.disposal = disposal
        self.complaint = complaint


class Version:
    """One state of a service line from its date on (SWIFT keeps only the latest as the row)."""

    __slots__ = ("cost", "date", "end", "minute", "reason", "status", "units")

    def __init__(self, date: int, minute: int, status: str, units: float, cost: float, end: int | None,
                 reason: str) -> None:
        self.date = date
        self.minute = minute
        self.status = status
        self.units = units
        self.cost = cost
        self.end = end
        self.reason = reason


class Service:
    """A SWIFT service line (package of care)."""

    __slots__ = ("component", "delivery", "kind", "provider", "seq", "start", "stype", "unit_type",
                 "versions")

    def __init__(self, seq: int, kind: str, stype: str, component: str, delivery: str, provider: str,
                 start: int, unit_type: str) -> None:
        self.seq = seq
        self.kind = kind  # short internal tag: home, day, meals, telecare, reable, care_home, ...
        self.stype = stype
        self.component = component
        self.delivery = delivery
        self.provider = provider
        self.start = start
        self.unit_type = unit_type
        self.versions: list[Version] = []

    def latest(self, on: int) -> Version | None:
        best = None
        for v in self.versions:
            if v.date <= on and (best is None or (v.date, v.minute) >= (best.date, best.minute)):
                best = v
        return best

    def open_on(self, day: int) -> bool:
        v = self.latest(day)
        return v is not None and v.status != ENDED

    def has_future(self, day: int) -> bool:
        return any(v.date > day for v in self.versions)


class Event:
    """A SWIFT event (request, assessment, review)."""

    __slots__ = ("end", "etype", "outcome", "seq", "start", "team", "worker")

    def __init__(self, seq: int, etype: str, start: int, end: int | None, outcome: str, worker: str,
                 team: str) -> None:
        self.seq = seq
        self.etype = etype
        self.start = start
        self.end = end
        self.outcome = outcome
        self.worker = worker
        self.team = team


class Social:
    """What the council knows about a client."""

    __slots__ = ("accommodation", "carer", "events", "first", "psr", "services", "team", "worker")

    def __init__(self, psr: str, carer: str, team: str, worker: str) -> None:
        self.psr = psr
        self.carer = carer
        self.team = team
        self.worker = worker
        self.accommodation: list[tuple[int, str]] = []
        self.services: list[Service] = []
        self.events: list[Event] = []
        self.first: int | None = None  # first date the council knew the person

    def accommodation_on(self, day: int) -> str:
        status = ""
        for d, s in self.accommodation:
            if d <= day:
                status = s
        return status


class Person:
    """One synthetic person and everything that happens to them."""

    __slots__ = (
        "addresses",
        "arrival",
        "attendances",
        "busy_until",
        "coded",
        "conds",
        "consults",
        "death",
        "dob",
        "f",
        "family",
        "findings",
        "given",
        "gp",
        "housebound",
        "idx",
        "kind",
        "left",
        "lives_alone",
        "meds",
        "n_ae",
        "n_coded",
        "n_cons",
        "n_ev",
        "n_med",
        "n_spell",
        "n_svc",
        "next_mi",
        "nhs",
        "pnum",
        "regs",
        "residence",
        "rng",
        "sex",
        "social",
        "spells",
        "telecom",
        "tenure",
        "trust",
    )

    def __init__(self, idx: int, pnum: str, nhs: str, kind: str, rng: random.Random) -> None:
        self.idx = idx
        self.pnum = pnum
        self.nhs = nhs
        self.kind = kind  # gp | swift | arrival
        self.rng = rng
        self.arrival = 0  # first day the person is in the area (ordinal); 0 = since before the window
        self.sex = "F"
        self.dob = 0
        self.given = ""
        self.family = ""
        self.f = 1.0
        self.conds: dict[str, Coded] = {}
        self.findings: dict[str, Coded] = {}
        self.coded: list[Coded] = []
        self.meds: list[Med] = []
        self.consults: list[tuple[int, int, int, str, str]] = []  # (seq, reg no, date, type, gmc)
        self.spells: list[Spell] = []
        self.attendances: list[Attendance] = []
        self.regs: list[Reg] = []
        self.addresses: list[tuple[int, str, str]] = []  # (from, address line, postcode)
        self.telecom = ""
        self.death: int | None = None
        self.left: int | None = None
        self.residence: list[tuple[int, int]] = []  # (from, care home index or -1 for own home)
        self.social: Social | None = None
        self.tenure = ""
        self.trust = 0
        self.housebound: int | None = None
        self.lives_alone = False
        self.busy_until = 0
        self.gp = True
        self.next_mi = 0  # next month index to simulate
        self.n_coded = self.n_med = self.n_cons = self.n_spell = self.n_ae = self.n_svc = self.n_ev = 0

    def age_on(self, day: int) -> float:
        return (day - self.dob) / 365.2425

    def home_on(self, day: int) -> int:
        """Care home index on the day, or -1 when living in their own home."""
        home = -1
        for d, h in self.residence:
            if d <= day:
                home = h
        return home

    def address_on(self, day: int) -> tuple[str, str]:
        line, pc = "", ""
        for d, a, p in self.addresses:
            if d <= day:
                line, pc = a, p
        return line, pc

    def gone_by(self, day: int) -> bool:
        return (self.death is not None and self.death <= day) or (self.left is not None and self.left <= day)
