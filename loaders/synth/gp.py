"""GP record events: diagnoses, findings, medicine authorisations, consultations and registrations."""

from __future__ import annotations

from .area import postcode
from .context import Context
from .params import by_age
from .records import Coded, Med, Person, Reg
from .rng import Weighted
from .tables import PREVALENCE_BANDS, Condition, Medicine

STATIN_CONDITIONS = ("chd", "stroke", "type2_diabetes", "ckd", "heart_failure")


def band_index(age: float) -> int:
    i = 0
    for j, lo in enumerate(PREVALENCE_BANDS):
        if age >= lo:
            i = j
    return i


def add_condition(ctx: Context, p: Person, cond: Condition, onset: int, *, with_meds: bool) -> Coded:
    rng = p.rng
    p.n_coded += 1
    c = Coded(p.n_coded, "problem", cond.variants.pick(rng), onset, rng.random())
    p.conds[cond.key] = c
    p.coded.append(c)
    if with_meds:
        add_group_meds(ctx, p, cond.key, onset + rng.randrange(0, 21))
    return c


def add_finding(ctx: Context, p: Person, key: str, day: int) -> Coded | None:
    if key in p.findings:
        return None
    finding = ctx.tables.finding_by_key[key]
    p.n_coded += 1
    c = Coded(p.n_coded, finding.entry_type, finding.code, day, p.rng.random())
    p.findings[key] = c
    p.coded.append(c)
    if key == "housebound":
        p.housebound = day
    return c


def active_drugs(p: Person) -> set[str]:
    return {m.med.drug_name for m in p.meds if m.end is None and m.ptype != "acute"}


def add_med(p: Person, med: Medicine, authorised: int, ptype: str | None = None) -> Med:
    p.n_med += 1
    if ptype is None:
        ptype = "repeat-dispensing" if p.rng.random() < 0.12 else "repeat"
    m = Med(p.n_med, med, ptype, authorised)
    p.meds.append(m)
    return m


def add_group_meds(ctx: Context, p: Person, group: str, authorised: int) -> None:
    """A new diagnosis: start the group's usual medicines on the day."""
    rng = p.rng
    have = active_drugs(p)
    for med in ctx.tables.medicine_groups.get(group, ()):
        if rng.random() < med.prob and med.drug_name not in have:
            add_med(p, med, authorised)
            have.add(med.drug_name)


def base_meds(ctx: Context, p: Person, age: float, ref: int) -> None:
    """Repeat medicines current at the reference date, with some ended and cancelled history."""
    rng = p.rng
    groups = ctx.tables.medicine_groups
    have: set[str] = set()

    def start(med: Medicine, onset: int) -> None:
        if med.drug_name in have:
            return
        earliest = max(onset + rng.randrange(0, 60), ref - rng.randrange(30, 900))
        m = add_med(p, med, min(earliest, ref - 1))
        have.add(med.drug_name)
        alternatives = [a for a in groups[med.group] if a.drug_name != med.drug_name]
        if alternatives and rng.random() < 0.1:  # switched from another drug some time ago
            old = alternatives[rng.randrange(len(alternatives))]
            before = add_med(p, old, m.authorised - rng.randrange(90, 900), ptype="repeat")
            before.end = m.authorised
            before.end_status = "ended"
        if alternatives and rng.random() < 0.03:  # a trial that was stopped early
            old = alternatives[rng.randrange(len(alternatives))]
            tried = add_med(p, old, ref - rng.randrange(60, 700), ptype="repeat")
            tried.end = min(tried.authorised + rng.randrange(7, 60), ref - 1)
            tried.end_status = "cancelled"

    for key, c in p.conds.items():
        if c.end is None:
            for med in groups.get(key, ()):
                if rng.random() < med.prob:
                    start(med, c.effective)
    statin_p = 0.0
    if any(k in p.conds for k in STATIN_CONDITIONS):
        statin_p = 0.75
    elif "hypertension" in p.conds and age > 50:
        statin_p = 0.35
    elif age >= 65:
        statin_p = 0.1
    if rng.random() < statin_p:
        start(ctx.statin_pick.pick(rng), ref - rng.randrange(30, 3000))
    if age >= 65:
        boost = p.f ** 0.5 * (1.5 if age >= 85 else 1.0)
        for med in groups["older"]:
            if med.drug_name.startswith("Tamsulosin") and p.sex != "M":
                continue
            if rng.random() < med.prob * boost:
                start(med, ref - rng.randrange(30, 2000))


def new_diagnosis(ctx: Context, p: Person, day: int) -> None:
    age = p.age_on(day)
    b = band_index(age)
    female = p.sex == "F"
    options = []
    weights = []
    for cond in ctx.tables.conditions:
        if cond.key in p.conds or age < cond.min_age:
            continue
        w = cond.prevalence[b] * (cond.female_rr if female else cond.male_rr)
        if w > 0:
            options.append(cond)
            weights.append(w)
    if options:
        add_condition(ctx, p, Weighted(options, weights).pick(p.rng), day, with_meds=True)


_LATE_FINDINGS = ("housebound", "falls", "mobility_poor", "walking_aid", "urinary_incontinence", "hearing_loss",
                  "memory_impairment", "weight_loss", "dizziness", "moderate_frailty", "severe_frailty")


def new_finding(ctx: Context, p: Person, day: int) -> None:
    age = p.age_on(day)
    weights = [2.0 * p.f, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0 if "dementia" in p.conds else 0.2, 0.5, 0.5, 0.5,
               0.4 if age >= 80 else 0.05]
    key = Weighted(_LATE_FINDINGS, weights).pick(p.rng)
    add_finding(ctx, p, key, day)


def current_reg(p: Person, day: int) -> Reg | None:
    for reg in reversed(p.regs):
        if reg.start <= day and (reg.end is None or reg.end >= day):
            return reg
    return None


def consult(ctx: Context, p: Person, day: int) -> None:
    reg = current_reg(p, day)
    if reg is None:
        return
    rng = p.rng
    at_home = p.home_on(day) >= 0 or (p.housebound is not None and p.housebound <= day)
    u = rng.random()
    if at_home:
        ctype = "home-visit" if u < 0.55 else ("telephone" if u < 0.95 else "video")
    elif p.age_on(day) >= 85:
        ctype = "surgery" if u < 0.5 else ("telephone" if u < 0.9 else ("home-visit" if u < 0.97 else "video"))
    else:
        ctype = "surgery" if u < 0.56 else ("telephone" if u < 0.92 else ("video" if u < 0.98 else "home-visit"))
    v = rng.random()
    if v < 0.6:
        gmc = reg.gmc
    elif v < 0.9:
        gps = ctx.area.practices[reg.practice].gps
        gmc = gps[rng.randrange(len(gps))]
    else:
        gmc = ""  # nurse or pharmacist contact: no GMC number
    p.n_cons += 1
    p.consults.append((p.n_cons, reg.no, day, ctype, gmc))


def acute(ctx: Context, p: Person, day: int) -> None:
    if current_reg(p, day) is None:
        return
    rng = p.rng
    med = ctx.acute_pick.pick(rng)
    m = add_med(p, med, day, ptype="acute")
    if rng.random() < 0.03:
        m.end = day + 1
        m.end_status = "cancelled"
    else:
        m.end = day + med.days


def switch_med(ctx: Context, p: Person, day: int) -> None:
    rng = p.rng
    current = [m for m in p.meds if m.ptype != "acute" and m.end is None and m.authorised <= day]
    if not current:
        return
    m = current[rng.randrange(len(current))]
    m.end = day
    m.end_status = "cancelled" if rng.random() < 0.2 else "ended"
    if rng.random() < 0.7:
        have = active_drugs(p)
        options = [a for a in ctx.tables.medicine_groups[m.med.group] if a.drug_name not in have]
        if options:
            add_med(p, options[rng.randrange(len(options))], day)


def home_address(ctx: Context, p: Person, practice: int) -> tuple[str, str]:
    rng = p.rng
    pr = ctx.area.practices[practice]
    streets = ctx.area.streets
    line = f"{rng.randint(1, 140)} {streets[rng.randrange(len(streets))]}, {pr.town}"
    return line, postcode(pr.district, rng.randrange(9), rng.randrange(400), rng.randrange(400))


def move_practice(ctx: Context, p: Person, day: int) -> None:
    practices = ctx.area.practices
    if len(practices) < 2 or not p.regs:
        return
    old = p.regs[-1]
    if old.end is not None or old.no >= 9 or old.start >= day:
        return
    rng = p.rng
    new = old.practice
    for _ in range(6):
        new = ctx.area.practice_pick.pick(rng)
        if new != old.practice:
            break
    if new == old.practice:
        new = (old.practice + 1) % len(practices)
    old.end = day
    gps = practices[new].gps
    p.regs.append(Reg(old.no + 1, new, day, gps[rng.randrange(len(gps))]))
    if rng.random() < 0.7 and p.home_on(day) < 0:
        line, pc = home_address(ctx, p, new)
        p.addresses.append((day, line, pc))
    p.trust = practices[new].trust


def leave_area(ctx: Context, p: Person, day: int) -> None:
    p.left = day
    if p.regs and p.regs[-1].end is None:
        p.regs[-1].end = max(day, p.regs[-1].start)  # a registration never ends before it starts


def findings_at_base(ctx: Context, p: Person, age: float, ref: int) -> None:
    """Coded findings already on the record at the reference date (mostly for older people)."""
    rng = p.rng
    f = p.f
    female = p.sex == "F"
    alone = by_age(((0, 0.0), (18, 0.12), (65, 0.25), (75, 0.35), (85, 0.5)), age) * (1.2 if female else 0.9)
    p.lives_alone = rng.random() < alone
    if p.lives_alone and rng.random() < 0.6:
        add_finding(ctx, p, "lives_alone", ref - rng.randrange(30, 1800))
    if age < 60:
        return

    def maybe(key: str, prob: float, years: float) -> None:
        if rng.random() < prob:
            add_finding(ctx, p, key, ref - 1 - rng.randrange(int(years * 365)))

    maybe("housebound", by_age(((60, 0.002), (65, 0.006), (75, 0.025), (85, 0.09)), age) * f ** 1.2, 3)
    maybe("falls", by_age(((60, 0.02), (65, 0.05), (75, 0.1), (85, 0.18)), age) * f ** 0.8, 2)
    maybe("mobility_poor", by_age(((60, 0.01), (75, 0.06), (85, 0.12)), age) * f, 3)
    maybe("walking_aid", by_age(((60, 0.01), (75, 0.05), (85, 0.1)), age) * f, 3)
    maybe("hearing_loss", by_age(((60, 0.05), (65, 0.08), (75, 0.15), (85, 0.25)), age), 8)
    maybe("urinary_incontinence", by_age(((60, 0.03), (75, 0.08), (85, 0.15)), age) * f ** 0.5, 5)
    maybe("memory_impairment", 0.4 if "dementia" in p.conds else by_age(((60, 0.01), (75, 0.03)), age), 4)
    maybe("cataract", by_age(((60, 0.05), (65, 0.1), (75, 0.2)), age), 8)
    maybe("dizziness", 0.03 * f, 3)
    maybe("weight_loss", 0.015 * f, 2)
    if age >= 75 and not p.lives_alone:
        maybe("has_carer", 0.1 * f, 3)
    if age >= 65 and rng.random() < 0.3:  # the practice has recorded an eFI category
        deficits = len(p.conds) + len(p.findings) + (1 if len(p.meds) >= 5 else 0)
        score = deficits / 36
        key = ("mild_frailty" if score <= 0.24 else "moderate_frailty" if score <= 0.36 else "severe_frailty")
        if score > 0.12:
            add_finding(ctx, p, key, ref - 1 - rng.randrange(365))
