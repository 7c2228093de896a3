"""Hospital activity: emergency and elective spells (HES style) and emergency department attendances."""

from __future__ import annotations

from .area import PROVIDERS
from .context import CARE_HOME_CODES, Context
from .records import Attendance, Person, Spell
from .tables import Diagnosis

INJURY_PREFIXES = ("S7200", "S060", "S422", "S320", "S525", "R296")


def _provider(p: Person) -> int:
    if len(PROVIDERS) > 1 and p.rng.random() < 0.1:
        return 1 - p.trust
    return p.trust


def pick_diagnosis(ctx: Context, p: Person, group: str, age: float, day: int) -> Diagnosis:
    pick = ctx.diag_pick[group]
    rng = p.rng
    fallback = pick.items[0]
    for _ in range(8):
        d = pick.pick(rng)
        if d.min_age > age or (d.sex and d.sex != p.sex):
            continue
        if d.requires:
            cond = p.conds.get(d.requires)
            if cond is None or cond.effective > day:
                continue
        return d
    return fallback


def _diagnoses(ctx: Context, p: Person, d: Diagnosis, day: int, age: float, share: float) -> list[str]:
    rng = p.rng
    diags = [d.code]
    for slot in d.secondaries:
        if slot[0][0] in "VWXY" or rng.random() < 0.5:
            code = slot[rng.randrange(len(slot))]
            if code not in diags:
                diags.append(code)
    for c in p.conds.values():
        if c.end is None and c.effective <= day and rng.random() < share:
            icd = c.code.icd10
            if icd and icd not in diags:
                diags.append(icd)
    if age >= 75:
        f = p.f
        extras = (("R268", 0.12 * f), ("Z740", 0.1 * f), ("Z602", 0.3 if p.lives_alone and p.home_on(day) < 0 else 0.0),
                  ("R54X", 0.08 if age >= 85 else 0.0),
                  ("R32X", 0.5 if "urinary_incontinence" in p.findings else 0.0),
                  ("L899", 0.03 * f), ("R410", 0.2 if "dementia" in p.conds else 0.0))
        for code, prob in extras:
            if prob and rng.random() < prob and code not in diags:
                diags.append(code)
    return diags[:20]


def _los(p: Person, mean: float, age: float) -> int:
    if mean <= 0:
        return 0
    m = mean * (1.0 + max(0.0, age - 65.0) / 50.0)
    return min(150, int(p.rng.expovariate(1.0 / m)))


def emergency(ctx: Context, p: Person, day: int, *, dies_on: int | None = None) -> tuple[Spell, Diagnosis] | None:
    """An emergency admission from the day (through A&E for most); None while already in hospital."""
    if day <= p.busy_until:
        return None
    rng = p.rng
    age = p.age_on(day)
    group = "e_old" if age >= 65 else ("e_adult" if age >= 18 else "e_child")
    d = pick_diagnosis(ctx, p, group, age, day)
    meth = ctx.admimeth_pick.pick(rng)
    provider = _provider(p)
    home = p.home_on(day)
    admisorc = "19" if home < 0 else ctx.area.care_homes[home].hes_code
    if meth == "2B":
        admisorc = "51"  # transfer from another hospital
    admidate = day
    if meth in ("21", "2A"):
        arr = ctx.hour_pick.pick(rng) * 60 + rng.randrange(60)
        dep = arr + 90 + int(rng.random() * 420)
        if dies_on is not None:
            dep = min(dep, 1439)
        p.n_ae += 1
        complaint = d.ae_snomed if rng.random() < 0.8 else ""
        p.attendances.append(Attendance(p.n_ae, provider, day, arr, day + dep // 1440, dep % 1440, "admitted",
                                        complaint))
        admidate = day + dep // 1440
    disdate = dies_on if dies_on is not None else admidate + _los(p, d.los_mean, age)
    mainspef = d.mainspef
    if age >= 75 and mainspef == "300" and rng.random() < 0.4:
        mainspef = "430"
    p.n_spell += 1
    spell = Spell(p.n_spell, provider, admidate, meth, admisorc, disdate, "1", mainspef,
                  _diagnoses(ctx, p, d, day, age, 0.85))
    spell.disdest = admisorc if admisorc in CARE_HOME_CODES else "19"
    if dies_on is not None:
        spell.dismeth, spell.disdest = "4", "79"
    elif rng.random() < 0.02:
        spell.dismeth = "2"  # self-discharge
    p.spells.append(spell)
    p.busy_until = disdate
    return spell, d


def elective(ctx: Context, p: Person, day: int) -> None:
    if day <= p.busy_until:
        return
    rng = p.rng
    age = p.age_on(day)
    d = pick_diagnosis(ctx, p, "elective", age, day)
    if d.min_age > age:
        return
    los = _los(p, d.los_mean, age)
    classpat = "2" if d.los_mean <= 0 else "1"
    if classpat == "1":
        los = max(1, los)
    home = p.home_on(day)
    src = "19" if home < 0 else ctx.area.care_homes[home].hes_code
    p.n_spell += 1
    spell = Spell(p.n_spell, p.trust, day, ctx.elective_meth_pick.pick(rng), src, day + los, classpat, d.mainspef,
                  _diagnoses(ctx, p, d, day, age, 0.6))
    spell.disdest = src
    p.spells.append(spell)
    p.busy_until = day + los


def ae_only(ctx: Context, p: Person, day: int, *, died: bool = False) -> None:
    """An attendance that did not lead to admission."""
    if day <= p.busy_until:
        return
    rng = p.rng
    arr = ctx.hour_pick.pick(rng) * 60 + rng.randrange(60)
    dep = arr + 45 + int(rng.random() * 330)
    if died:
        disposal = "died"
        dep = min(dep, 1439)
    else:
        u = rng.random()
        disposal = "discharged" if u < 0.76 else ("referred" if u < 0.92 else "left")
    complaint = ctx.tables.complaints.pick(rng) if rng.random() < 0.85 else ""
    p.n_ae += 1
    p.attendances.append(Attendance(p.n_ae, _provider(p), day, arr, day + dep // 1440, dep % 1440, disposal,
                                    complaint))
