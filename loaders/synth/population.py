"""Who the people are: age, sex, names, frailty, conditions, registration and their state before the window."""

from __future__ import annotations

import math
from datetime import date

from . import gp, social
from .area import PROVIDERS, postcode
from .context import Context
from .params import by_age
from .records import Person, Reg
from .rng import make_rng

_PNUM_STEP = 7919 * 13  # coprime with 10**7: person index -> 7-digit number is one-to-one


def new_person(ctx: Context, idx: int, kind: str, arrival_mi: int = 0) -> Person:
    """Person idx, drawn from its own random stream (kind: gp, swift or arrival)."""
    rng = make_rng(ctx.seed, "person", idx)
    pnum = f"{(idx * _PNUM_STEP + ctx.seed) % 10_000_000:07d}"
    p = Person(idx, pnum, ctx.allocator.number(idx), kind, rng)
    if kind == "arrival":
        _arrival(ctx, p, arrival_mi)
    else:
        _resident(ctx, p)
    return p


def _sex(p: Person, female_share: float) -> str:
    u = p.rng.random()
    if u < 0.0005:
        return "I"
    if u < 0.001:
        return "U"
    return "F" if p.rng.random() < female_share else "M"


def _names(ctx: Context, p: Person, birth_year: int) -> None:
    rng = p.rng
    female = p.sex == "F" or (p.sex in ("I", "U") and rng.random() < 0.5)
    kind = ("f" if female else "m") + ("_old" if birth_year < 1965 else "_young")
    p.given = ctx.tables.names[kind].pick(rng)
    p.family = ctx.tables.names["family"].pick(rng)


def _frailty(ctx: Context, p: Person) -> None:
    s = ctx.params.frailty_sigma
    p.f = math.exp(p.rng.gauss(0.0, s) - s * s / 2.0)


def _conditions(ctx: Context, p: Person, age: float, ref: int) -> None:
    rng = p.rng
    a = ctx.params.condition_frailty_power
    s = ctx.params.frailty_sigma
    lift = p.f ** a / math.exp(a * (a - 1.0) * s * s / 2.0)  # mean 1 across people
    b = gp.band_index(age)
    female = p.sex == "F"
    for cond in ctx.tables.conditions:
        if age < cond.min_age:
            continue
        base = min(cond.prevalence[b] * (cond.female_rr if female else cond.male_rr), 0.95)
        odds = base / (1.0 - base) * lift  # frailer people carry more conditions; odds keep it below 1
        if rng.random() >= odds / (1.0 + odds):
            continue
        onset_age = age - (age - cond.min_age) * rng.random() ** 1.6
        onset = min(p.dob + int(onset_age * 365.2425), ref - 1)
        c = gp.add_condition(ctx, p, cond, onset, with_meds=False)
        if cond.key == "depression" and rng.random() < 0.35:
            end = onset + rng.randint(180, 1100)
            if end < ref:
                c.end, c.end_status = end, "resolved"
        elif cond.key == "asthma" and onset_age < 16 and age > 30 and rng.random() < 0.3:
            c.end, c.end_status = min(onset + rng.randint(2000, 6000), ref - 1), "past"


def _telecom(p: Person, age: float) -> str:
    rng = p.rng
    u = rng.random()
    mobile = f"07700 900{rng.randrange(1000):03d}"
    landline = f"01632 960{rng.randrange(1000):03d}"
    if age >= 65:
        return landline if u < 0.6 else (mobile if u < 0.9 else "")
    return mobile if u < 0.85 else (landline if u < 0.9 else "")


def _care_home(ctx: Context, p: Person, age: float, ref: int) -> None:
    rng = p.rng
    pa = ctx.params
    prob = by_age(pa.care_home, age) * (pa.care_home_dementia_rr if "dementia" in p.conds else 1.0) * p.f ** 0.8
    if age < 65 or rng.random() >= min(prob, 0.8):
        return
    nursing = ("dementia" in p.conds and rng.random() < 0.55) or rng.random() < 0.3
    homes = ctx.area.nursing_homes if nursing else ctx.area.residential_homes
    home = homes[rng.randrange(len(homes))]
    start = ctx.ms(ctx.history_mi) - 1 - int(rng.random() * min(5.0, age - 64.0) * 365)  # before the window
    p.residence.append((start, home.index))
    p.addresses.append((start, home.address, home.postcode))
    gp.add_finding(ctx, p, "nursing_home" if home.nursing else "residential_home", start)


def _social_base(ctx: Context, p: Person, age: float, ref: int) -> None:
    rng = p.rng
    pa = ctx.params
    if age < 18:
        return
    home = p.home_on(ref)
    if home >= 0:
        start = p.residence[-1][0]
        soc = social.ensure_client(ctx, p, start - 30)
        if rng.random() < 0.5:  # home support before the move
            social.start_home_support(ctx, p, start - rng.randint(120, 900), assess=False, extras=False)
        social.placement(ctx, p, start, home, via=None)
        soc.first = min(soc.first or start, start - 30)
        return
    if age >= 65:
        prob = by_age(pa.home_support, age) * p.f ** 1.2 * (2.5 if p.housebound is not None else 1.0)
        if rng.random() < min(prob, 0.7):
            start = ctx.ms(ctx.history_mi) - 1 - int(rng.random() * min(4.0, age - 64.0) * 365)
            social.ensure_client(ctx, p, start - 20)
            social.add_event(p, "Assessment", start - 20, start - 6, "Support Planning / Services")
            social.start_home_support(ctx, p, start, assess=False)
    else:
        social.working_age_client(ctx, p, ctx.ms(ctx.history_mi) - 1)


def _resident(ctx: Context, p: Person) -> None:
    """Someone living in the area at the start of the simulated window."""
    rng = p.rng
    ref = ctx.ref
    band = ctx.age_pick.pick(rng) if p.kind == "gp" else (
        ctx.old_pick.pick(rng) if rng.random() < 0.75 else ctx.adult_pick.pick(rng))
    age = band.lo + rng.random() * (band.hi - band.lo + 1)
    p.dob = ref - 1 - int(age * 365.2425)
    p.sex = _sex(p, band.female_share)
    _names(ctx, p, date.fromordinal(p.dob).year)
    _frailty(ctx, p)
    p.next_mi = ctx.history_mi
    _conditions(ctx, p, age, ref)
    gp.base_meds(ctx, p, age, ref)
    gp.findings_at_base(ctx, p, age, ref)
    p.tenure = (social.TENURE_OLD if age >= 65 else social.TENURE_YOUNG).pick(rng)
    if p.kind == "gp":
        practice = ctx.area.practice_pick.pick(rng)
        pr = ctx.area.practices[practice]
        years = min(age, rng.expovariate(1.0 / 14.0))
        start = max(p.dob + rng.randint(7, 40), ref - 1 - int(years * 365.2425))
        if start >= ref:
            start = ref - 1 - rng.randrange(30)
        p.regs.append(Reg(0, practice, start, pr.gps[rng.randrange(len(pr.gps))]))
        p.trust = pr.trust
        line, pc = gp.home_address(ctx, p, practice)
    else:
        p.gp = False
        p.trust = 0 if rng.random() < 0.7 else len(PROVIDERS) - 1
        town = ctx.area.towns[rng.randrange(len(ctx.area.towns))]
        line = f"{rng.randint(1, 140)} {ctx.area.streets[rng.randrange(len(ctx.area.streets))]}, {town}"
        pc = postcode(f"ZZ{rng.randint(1, 9)}", rng.randrange(9), rng.randrange(400), rng.randrange(400))
    p.addresses.append((p.dob, line, pc))
    p.telecom = _telecom(p, age)
    _care_home(ctx, p, age, ref)
    _social_base(ctx, p, age, ref)
    if p.kind == "swift" and p.social is None:  # a council client by definition
        before = ctx.ms(ctx.history_mi) - 1
        if age >= 65:
            social.start_home_support(ctx, p, before - rng.randrange(0, 900), assess=True)
        else:
            social.ensure_client(ctx, p, before - 700, "Physical Support: Personal care support")
            social.start_home_support(ctx, p, before - rng.randrange(0, 700), assess=True, extras=False)


def _arrival(ctx: Context, p: Person, mi: int) -> None:
    """A birth or a newcomer registering with a practice during month mi."""
    rng = p.rng
    ms, me = ctx.ms(mi), ctx.me(mi)
    day = ms + rng.randrange(me - ms + 1)
    p.arrival = day
    p.next_mi = mi
    if rng.random() < ctx.params.arrival_births:
        age = 0.0
        p.dob = day
        p.sex = _sex(p, 0.488)
        reg_start = day + rng.randint(7, 28)
    else:
        band = ctx.mover_pick.pick(rng)
        age = band.lo + rng.random() * (band.hi - band.lo + 1)
        p.dob = day - int(age * 365.2425)
        p.sex = _sex(p, band.female_share)
        reg_start = day
    _names(ctx, p, date.fromordinal(p.dob).year)
    _frailty(ctx, p)
    if age > 0:
        _conditions(ctx, p, age, day)
        gp.base_meds(ctx, p, age, day)
        gp.findings_at_base(ctx, p, age, day)
    p.tenure = (social.TENURE_OLD if age >= 65 else social.TENURE_YOUNG).pick(rng)
    practice = ctx.area.practice_pick.pick(rng)
    pr = ctx.area.practices[practice]
    p.regs.append(Reg(0, practice, reg_start, pr.gps[rng.randrange(len(pr.gps))]))
    p.trust = pr.trust
    line, pc = gp.home_address(ctx, p, practice)
    p.addresses.append((p.dob, line, pc))
    p.telecom = _telecom(p, max(age, 18.0))
