"""The monthly microsimulation: what happens to a person in each month (competing monthly hazards)."""

from __future__ import annotations

from . import gp, hospital, social
from .context import Context
from .records import Person, Spell
from .rng import poisson

DEATH, MOVE, LEAVE, EMERG, ELECT, AE, HOME, REQ, CARE, HOURS, NEWDX, FIND, SWITCH, PAUSE = range(14)
N_KINDS = 14
FALL_PRIMARIES = frozenset({"S7200", "S060", "S422", "S320", "S525", "R296"})


def advance(ctx: Context, p: Person, until_mi: int) -> None:
    """Simulate the person's months up to and including until_mi (resumable)."""
    while p.next_mi <= until_mi:
        _month(ctx, p, p.next_mi)
        p.next_mi += 1


def _hazards(ctx: Context, p: Person, mi: int, ms: int, age: float) -> list[float]:
    pa = ctx.params
    f = p.f
    home = p.home_on(ms)
    ncond = sum(1 for c in p.conds.values() if c.end is None and c.effective <= ms) if p.conds else 0
    first = ctx.first_mi
    a = min(int(age), 120)
    hz = [0.0] * N_KINDS
    if mi >= first - 12:  # deaths and moves in the year before the first extract and after
        hz[DEATH] = ctx.death_by_age[a] * f ** 0.9 * (1.0 + 0.12 * ncond) * (1.5 if home >= 0 else 1.0) / 12.0
        if home < 0:
            hz[LEAVE] = ctx.leave_by_age[a] / 12.0
            if p.gp and p.regs and p.regs[-1].end is None:
                hz[MOVE] = pa.move_practice / 12.0
    hz[EMERG] = (ctx.emergency_by_age[a] * f ** pa.emergency_frailty_power
                 * (1.0 + pa.emergency_per_condition * ncond) * (1.4 if home >= 0 else 1.0) / 12.0)
    hz[ELECT] = ctx.elective_by_age[a] * (1.0 + 0.2 * ncond) / 12.0
    hz[AE] = ctx.ae_by_age[a] * f ** 0.5 / 12.0
    if age >= 18.0:
        hz[REQ] = ctx.request_by_age[a] * f / 12.0
        if home < 0 and age >= 65.0:
            if social.home_support(p, ms) is None:
                hz[HOME] = (ctx.home_start_by_age[a] * f ** 1.2
                            * (2.5 if p.housebound is not None else 1.0) * (1.5 if p.lives_alone else 1.0) / 12.0)
            else:
                hz[HOURS] = pa.hours_change_monthly
                hz[PAUSE] = pa.suspension_monthly
            hz[CARE] = (ctx.care_entry_by_age[a] * f
                        * (pa.care_home_dementia_rr if "dementia" in p.conds else 1.0) / 12.0)
        if mi >= first and p.gp:
            hz[NEWDX] = min(0.05, pa.new_diagnosis_monthly * (age / 50.0) ** 2 * f)
            if age >= 65.0:
                hz[FIND] = min(0.05, pa.new_finding_monthly * f * (age / 75.0) ** 2)
    if mi >= first - 11 and p.gp and p.meds:
        repeats = sum(1 for m in p.meds if m.end is None and m.ptype != "acute")
        hz[SWITCH] = repeats * pa.medicine_switch_per_repeat
    total = sum(hz)
    if total > 0.9:  # keep the monthly draw meaningful for the very highest-risk people
        hz = [h * 0.9 / total for h in hz]
    return hz


def _month(ctx: Context, p: Person, mi: int) -> None:
    ms, me = ctx.ms(mi), ctx.me(mi)
    if p.gone_by(ms):
        return
    first = max(ms, p.arrival)
    if first > me:
        return
    rng = p.rng
    age = p.age_on(ms)
    hz = _hazards(ctx, p, mi, ms, age)
    total = sum(hz)
    span = me - first + 1
    events: list[tuple[int, int]] = []
    for _ in range(6):
        u = rng.random()
        if u >= total:
            break
        k = 0
        acc = hz[0]
        while u >= acc and k < N_KINDS - 1:
            k += 1
            acc += hz[k]
        events.append((first + rng.randrange(span), k))
        if k <= LEAVE:  # at most one death, move or departure a month
            total -= hz[k]
            hz[k] = 0.0
    events.sort()
    for day, k in events:
        if p.gone_by(day):
            break
        _event(ctx, p, k, day, ms)
    if mi >= ctx.first_mi - 11 and p.gp:
        pa = ctx.params
        ncond = sum(1 for c in p.conds.values() if c.end is None and c.effective <= ms) if p.conds else 0
        a = min(int(age), 120)
        rate = ctx.consult_by_age[a] * (1.0 + pa.consult_per_condition * ncond) * p.f ** 0.5
        for _ in range(poisson(rng, rate / 12.0)):
            day = first + rng.randrange(span)
            if not p.gone_by(day):
                gp.consult(ctx, p, day)
        for _ in range(poisson(rng, ctx.acute_by_age[a] * (1.0 + 0.2 * ncond) / 12.0)):
            day = first + rng.randrange(span)
            if not p.gone_by(day):
                gp.acute(ctx, p, day)
    if p.social is not None and not p.gone_by(me):
        social.annual_reviews(p, ms, me, mi)


def _event(ctx: Context, p: Person, k: int, day: int, ms: int) -> None:
    if k == DEATH:
        _die(ctx, p, day, ms)
    elif k == MOVE:
        if day > p.busy_until:
            gp.move_practice(ctx, p, day)
    elif k == LEAVE:
        if day > p.busy_until:
            gp.leave_area(ctx, p, day)
            social.close_for_move(p, day)
    elif k == EMERG:
        _emergency(ctx, p, day)
    elif k == ELECT:
        hospital.elective(ctx, p, day)
    elif k == AE:
        hospital.ae_only(ctx, p, day)
    elif k == HOME:
        if p.home_on(day) < 0 and social.home_support(p, day) is None and day > p.busy_until:
            social.start_home_support(ctx, p, day, assess=True)
    elif k == REQ:
        social.request_only(ctx, p, day)
    elif k == CARE:
        if p.home_on(day) < 0 and day > p.busy_until:
            enter_care_home(ctx, p, day, None)
    elif k == HOURS:
        social.change_hours(ctx, p, day)
    elif k == NEWDX:
        gp.new_diagnosis(ctx, p, day)
    elif k == FIND:
        gp.new_finding(ctx, p, day)
    elif k == SWITCH:
        gp.switch_med(ctx, p, day)
    elif k == PAUSE:
        social.suspend_briefly(ctx, p, day)


def enter_care_home(ctx: Context, p: Person, day: int, spell: Spell | None) -> None:
    rng = p.rng
    nursing = ("dementia" in p.conds and rng.random() < 0.55) or rng.random() < 0.3
    homes = ctx.area.nursing_homes if nursing else ctx.area.residential_homes
    home = homes[rng.randrange(len(homes))]
    p.residence.append((day, home.index))
    p.addresses.append((day, home.address, home.postcode))
    if p.gp:
        gp.add_finding(ctx, p, "nursing_home" if home.nursing else "residential_home", day)
    social.placement(ctx, p, day, home.index, via=spell)
    if spell is not None:
        spell.disdest = home.hes_code


def _emergency(ctx: Context, p: Person, day: int) -> None:
    made = hospital.emergency(ctx, p, day)
    if made is None:
        return
    spell, d = made
    age = p.age_on(day)
    if age < 18.0:
        return
    rng = p.rng
    pa = ctx.params
    home = p.home_on(spell.admidate)
    fall = d.code in FALL_PRIMARIES or any(x[0] == "W" for x in spell.diags[1:])
    if fall and p.gp and age >= 50.0:
        gp.add_finding(ctx, p, "falls", spell.disdate)
    if home < 0 and age >= 70.0:
        prob = (pa.care_home_after_admission * p.f * (3.0 if "dementia" in p.conds else 1.0)
                * (2.0 if d.code in ("S7200", "I639") else 1.0))
        if rng.random() < min(prob, 0.6):
            social.hospital_stay(p, spell, resume=False)
            enter_care_home(ctx, p, spell.disdate, spell)
            return
    social.hospital_stay(p, spell, resume=True)
    if home < 0 and age >= 65.0 and rng.random() < pa.reablement_after_admission * min(2.0, p.f):
        social.reablement(ctx, p, spell)


def _die(ctx: Context, p: Person, day: int, ms: int) -> None:
    rng = p.rng
    home = p.home_on(day)
    social.truncate_after(p, day)
    last = p.spells[-1] if p.spells else None
    if last is not None and last.admidate <= day <= last.disdate:
        last.disdate, last.dismeth, last.disdest = day, "4", "79"
    elif p.age_on(day) >= 1.0 and rng.random() < (0.15 if home >= 0 else ctx.params.death_in_hospital):
        admit = max(ms, p.busy_until + 1, day - int(rng.expovariate(1.0 / 6.0)))
        if admit <= day:
            hospital.emergency(ctx, p, admit, dies_on=day)
    elif rng.random() < 0.03:
        hospital.ae_only(ctx, p, day, died=True)
    p.death = day
    p.busy_until = day
    if p.regs and p.regs[-1].end is None:
        p.regs[-1].end = max(day + rng.randint(1, 21), p.regs[-1].start)  # never before it starts
    social.close_for_death(p, day)
