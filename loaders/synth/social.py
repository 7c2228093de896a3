"""Social care (SWIFT) events: clients, packages of care and their changes, requests, assessments, reviews."""

from __future__ import annotations

from datetime import date

from .context import Context
from .records import ACTIVE, ENDED, SUSPENDED, Event, Person, Service, Social, Spell, Version
from .rng import Weighted

COMMUNITY_KINDS = frozenset({"home", "day", "meals", "telecare", "transport", "reable", "respite"})
LONG_TERM_KINDS = frozenset({"home", "day", "meals", "telecare", "care_home", "csl", "shared_lives", "prof"})
NURSING, RESIDENTIAL = "Registered nursing home", "Registered care home"
TENURE_OLD = Weighted(
    ["Owner occupier or shared ownership scheme",
     "Tenant - local authority/arms length management organisation/registered social landlord/housing association",
     "Tenant - private landlord", "Sheltered housing / extra care housing / other sheltered housing",
     "Settled mainstream housing with family / friends"], [62, 20, 6, 10, 2])
TENURE_YOUNG = Weighted(
    ["Owner occupier or shared ownership scheme",
     "Tenant - local authority/arms length management organisation/registered social landlord/housing association",
     "Tenant - private landlord", "Settled mainstream housing with family / friends"], [55, 20, 20, 5])


def _minute(p: Person) -> int:
    return 8 * 60 + p.rng.randrange(9 * 60)  # office hours


def ensure_client(ctx: Context, p: Person, day: int, psr: str = "") -> Social:
    soc = p.social
    rng = p.rng
    if soc is None:
        town = ctx.area.practices[p.regs[-1].practice].town if p.regs else ctx.area.towns[p.idx % len(ctx.area.towns)]
        if not psr:
            if "dementia" in p.conds:
                psr = "Support with Memory & Cognition"
            elif "hearing_loss" in p.findings and rng.random() < 0.1:
                psr = "Sensory Support: Support for hearing impairment"
            else:
                u = rng.random()
                psr = ("Physical Support: Personal care support" if u < 0.72 else
                       "Physical Support: Access & mobility only" if u < 0.94 else
                       "Social Support: Social Isolation/Other")
        u = rng.random()
        carer = "" if u < 0.1 else ("N" if p.lives_alone or u < 0.45 else "Y")
        workers = ctx.area.workers
        soc = Social(psr, carer, f"{town} Adult Social Care", workers[rng.randrange(len(workers))])
        soc.accommodation.append((day, p.tenure))
        p.social = soc
    if soc.first is None or day < soc.first:
        soc.first = day
    return soc


def add_event(p: Person, etype: str, start: int, end: int | None, outcome: str, team: str = "") -> Event:
    soc = p.social
    assert soc is not None
    p.n_ev += 1
    ev = Event(p.n_ev, etype, start, end, outcome, soc.worker, team or soc.team)
    soc.events.append(ev)
    return ev


def add_service(p: Person, kind: str, stype: str, component: str, delivery: str, provider: str, start: int,
                units: float, unit_type: str, cost: float, reason: str = "Provision of service") -> Service:
    soc = p.social
    assert soc is not None
    p.n_svc += 1
    svc = Service(p.n_svc, kind, stype, component, delivery, provider, start, unit_type)
    svc.versions.append(Version(start, _minute(p), ACTIVE, units, round(cost, 2), None, reason))
    soc.services.append(svc)
    return svc


def change(p: Person, svc: Service, day: int, status: str, reason: str, units: float | None = None) -> None:
    last = svc.latest(day) or svc.versions[-1]
    if units is None:
        units = last.units
        cost = last.cost
    else:
        rate = last.cost / last.units if last.units else 0.0
        cost = round(units * rate, 2)
    svc.versions.append(Version(day, _minute(p), status, units, cost, day if status == ENDED else None, reason))


def open_services(p: Person, day: int, kinds: frozenset[str] | None = None) -> list[Service]:
    if p.social is None:
        return []
    return [s for s in p.social.services
            if s.start <= day and s.open_on(day) and (kinds is None or s.kind in kinds)]


def end_services(p: Person, day: int, reason: str, kinds: frozenset[str] | None = None) -> None:
    for svc in open_services(p, day, kinds):
        change(p, svc, day, ENDED, reason)


def home_support(p: Person, day: int) -> Service | None:
    """The home support line that is open (or suspended) on the day, if any."""
    for svc in open_services(p, day, frozenset({"home"})):
        return svc
    return None


def start_home_support(ctx: Context, p: Person, day: int, *, assess: bool, extras: bool = True) -> Service:
    rng = p.rng
    soc = ensure_client(ctx, p, day)
    start = day
    if assess:
        add_event(p, "Request", day, day, "Progress to Assessment")
        a_start = day + rng.randint(2, 10)
        a_end = a_start + rng.randint(1, 10)
        add_event(p, "Assessment", a_start, a_end, "Support Planning / Services")
        start = a_end + rng.randint(1, 7)
    hours = round(max(2.0, min(35.0, rng.gammavariate(2.0, 3.0 * p.f ** 0.5) + 2.0)) * 2) / 2
    delivery = ctx.delivery_pick.pick(rng)
    providers = ctx.area.home_care
    provider = "" if delivery == "Direct Payment" else providers[rng.randrange(len(providers))]
    lo, hi = ctx.params.home_support_hourly
    rate = round(rng.uniform(lo, hi), 2)
    svc = add_service(p, "home", "Long Term Support: Community", "Home Support", delivery, provider, start, hours,
                      "Hours", hours * rate)
    if extras:
        town = soc.team.removesuffix(" Adult Social Care")
        if rng.random() < 0.45:
            add_service(p, "telecare", "Long Term Support: Community", "Equipment", "CASSR Commissioned Support",
                        "Telecare Services", start, 1, "Weeks", rng.uniform(3.5, 6.5))
        if rng.random() < 0.1:
            meals = rng.randint(5, 7)
            add_service(p, "meals", "Long Term Support: Community", "Meals", "CASSR Commissioned Support",
                        "Community Meals Service", start, meals, "Meals", meals * 5.4)
        if rng.random() < 0.12:
            days = rng.randint(1, 3)
            add_service(p, "day", "Long Term Support: Community", "Day Support", "CASSR Commissioned Support",
                        f"{town} Day Centre", start, days, "Days", days * rng.uniform(48.0, 58.0))
            if rng.random() < 0.5:
                add_service(p, "transport", "Long Term Support: Community", "Transport",
                            "CASSR Commissioned Support", "Community Transport", start, days * 2, "Sessions",
                            days * 2 * 12.0)
    return svc


def placement(ctx: Context, p: Person, day: int, home_index: int, *, via: Spell | None) -> None:
    """Long-term residential or nursing care from the day (the council arranges and pays)."""
    rng = p.rng
    home = ctx.area.care_homes[home_index]
    soc = ensure_client(ctx, p, day - 10)
    assess = max(via.admidate, day - 5) if via is not None else day - rng.randint(5, 20)
    add_event(p, "Assessment", assess, day - 1 if day - 1 >= assess else assess, "Support Planning / Services",
              "Hospital Discharge Team" if via is not None else "")
    moved = "Moved into nursing home" if home.nursing else "Moved into residential care"
    end_services(p, day, moved, COMMUNITY_KINDS)
    if home.nursing:
        add_service(p, "care_home", "Long Term Support: Nursing Care", "Long Term Nursing Care",
                    "CASSR Commissioned Support", home.name, day, 1, "Weeks", home.weekly_cost)
    else:
        add_service(p, "care_home", "Long Term Support: Residential Care", "Long Term Residential Care",
                    "CASSR Commissioned Support", home.name, day, 1, "Weeks", home.weekly_cost)
    soc.accommodation.append((day, NURSING if home.nursing else RESIDENTIAL))


def reablement(ctx: Context, p: Person, spell: Spell) -> None:
    """Short-term reablement after discharge, sometimes followed by long-term home support."""
    rng = p.rng
    ensure_client(ctx, p, max(spell.admidate, spell.disdate - 2))
    add_event(p, "Request", max(spell.admidate, spell.disdate - 2), max(spell.admidate, spell.disdate - 1),
              "Progress to Reablement/ST-Max", "Hospital Discharge Team")
    town = p.social.team.removesuffix(" Adult Social Care") if p.social else ""
    hours = rng.choice((5.0, 7.0, 7.5, 10.0, 10.5, 14.0))
    svc = add_service(p, "reable", "Short Term Support: ST-Max", "Reablement", "CASSR Commissioned Support",
                      f"{town} Reablement Team", spell.disdate, hours, "Hours", 0.0)
    end = spell.disdate + rng.randint(21, 42)
    change(p, svc, end, ENDED, "Service Ended as Planned")
    existing = home_support(p, spell.disdate)
    if existing is None and rng.random() < ctx.params.home_support_after_reablement:
        add_event(p, "Review", end - 2, end, "Support Planning / Services")
        start_home_support(ctx, p, end + 1, assess=False, extras=rng.random() < 0.5)
    else:
        add_event(p, "Review", end - 2, end, "Service Ended as Planned")


def request_only(ctx: Context, p: Person, day: int) -> None:
    ensure_client(ctx, p, day)
    outcome = ("NFA - Information & Advice / Signposting only" if p.rng.random() < 0.7
               else "NFA - Support declined")
    add_event(p, "Request", day, day + p.rng.randint(0, 6), outcome)


def change_hours(ctx: Context, p: Person, day: int) -> None:
    svc = home_support(p, day)
    if svc is None or svc.has_future(day):
        return
    last = svc.latest(day)
    if last is None or last.status != ACTIVE:
        return
    rng = p.rng
    delta = rng.choice((-2.0, -1.0, 1.0, 1.5, 2.0, 3.0, 3.5, 5.0))
    units = max(1.5, min(40.0, last.units + delta))
    if units == last.units:
        return
    if delta > 0 and "falls" in p.findings and rng.random() < 0.3:
        reason = "Increase after fall"
    else:
        reason = "Increased following review" if delta > 0 else "Reduced following review"
    add_event(p, "Review", day - rng.randint(1, 7), day, "Support Planning / Services")
    change(p, svc, day, ACTIVE, reason, units)


def suspend_briefly(ctx: Context, p: Person, day: int) -> None:
    """A holiday, a respite stay or the client's request pauses home support for a few weeks."""
    svc = home_support(p, day)
    if svc is None or svc.has_future(day):
        return
    last = svc.latest(day)
    if last is None or last.status != ACTIVE:
        return
    rng = p.rng
    weeks = rng.randint(1, 6)
    u = rng.random()
    reason = "Respite stay" if u < 0.25 else ("Client on holiday" if u < 0.65 else "Client request")
    change(p, svc, day, SUSPENDED, reason)
    change(p, svc, day + 7 * weeks, ACTIVE, "Resumed after suspension")
    if reason == "Respite stay":
        homes = ctx.area.residential_homes
        home = homes[rng.randrange(len(homes))]
        respite = add_service(p, "respite", "Short Term Support: Other Short Term", "Short Term Residential Care",
                              "CASSR Commissioned Support", home.name, day, 7, "Nights", 7 * rng.uniform(110.0, 135.0))
        change(p, respite, day + 7 * weeks, ENDED, "Service Ended as Planned")


def hospital_stay(p: Person, spell: Spell, *, resume: bool) -> None:
    """Home support is suspended while the client is in hospital, and restarts on discharge."""
    svc = home_support(p, spell.admidate)
    if svc is None or svc.has_future(spell.admidate) or spell.disdate - spell.admidate < 2:
        return
    change(p, svc, spell.admidate + 1, SUSPENDED, "In hospital")
    if resume:
        change(p, svc, spell.disdate, ACTIVE, "Restarted after hospital discharge")


def annual_reviews(p: Person, ms: int, me: int, mi: int) -> None:
    soc = p.social
    if soc is None:
        return
    for svc in soc.services:
        if svc.kind not in LONG_TERM_KINDS or svc.start >= ms:
            continue
        start = date.fromordinal(svc.start)
        if start.month - 1 != mi % 12 or not svc.open_on(ms):
            continue
        day = min(ms + start.day - 1, me)
        outcome = "No change in package" if p.rng.random() < 0.85 else "Provision of service"
        add_event(p, "Review", day - p.rng.randint(0, 5), day, outcome)
        return


def close_for_death(p: Person, day: int) -> None:
    if p.social is None:
        return
    end_services(p, day, "NFA - Deceased")


def close_for_move(p: Person, day: int) -> None:
    if p.social is None:
        return
    if open_services(p, day):
        add_event(p, "Review", day, day, "NFA - Moved to another LA")
    end_services(p, day, "NFA - Moved to another LA")


def truncate_after(p: Person, day: int) -> None:
    """Forget everything dated after the day (used when the person dies)."""
    soc = p.social
    if soc is not None:
        soc.services = [s for s in soc.services if s.start <= day]
        for s in soc.services:
            s.versions = [v for v in s.versions if v.date <= day]
        soc.events = [e for e in soc.events if e.start <= day]
        for e in soc.events:
            if e.end is not None and e.end > day:
                e.end = day
        soc.accommodation = [a for a in soc.accommodation if a[0] <= day] or soc.accommodation[:1]
    p.coded = [c for c in p.coded if c.effective <= day]
    p.conds = {k: c for k, c in p.conds.items() if c.effective <= day}
    p.findings = {k: c for k, c in p.findings.items() if c.effective <= day}
    p.meds = [m for m in p.meds if m.authorised <= day]
    p.residence = [r for r in p.residence if r[0] <= day]
    p.addresses = [a for a in p.addresses if a[0] <= day] or p.addresses[:1]
    p.regs = [r for r in p.regs if r.start <= day]
    p.spells = [s for s in p.spells if s.admidate <= day]
    p.attendances = [a for a in p.attendances if a.arrival <= day]


def working_age_client(ctx: Context, p: Person, ref: int) -> None:
    """Learning disability, mental health or physical disability support for an adult under 65."""
    rng = p.rng
    u = rng.random()
    pa = ctx.params
    start = ref - rng.randrange(0, 3600)  # ref: the day before the simulated window
    if u < pa.learning_disability:
        soc = ensure_client(ctx, p, start, "Learning Disability Support")
        acc = Weighted(["Supported accommodation / supported lodgings / supported group home",
                        "Settled mainstream housing with family / friends", "Shared Lives scheme"],
                       [40, 45, 15]).pick(rng)
        soc.accommodation = [(start, acc)]
        add_event(p, "Assessment", start - 20, start - 5, "Support Planning / Services", "Learning Disability Team")
        soc.team = "Learning Disability Team"
        if acc.startswith("Supported"):
            hours = float(rng.randrange(20, 61))
            add_service(p, "csl", "Long Term Support: Community", "Community Supported Living",
                        "CASSR Commissioned Support", "Pathways Support Trust", start, hours, "Hours", hours * 19.8)
        elif acc == "Shared Lives scheme":
            add_service(p, "shared_lives", "Long Term Support: Community", "Shared Lives",
                        "CASSR Commissioned Support", "Shared Lives South", start, 1, "Weeks",
                        rng.uniform(420.0, 560.0))
        else:
            days = rng.randint(2, 5)
            add_service(p, "day", "Long Term Support: Community", "Day Support", "CASSR Commissioned Support",
                        "Horizons Day Service", start, days, "Days", days * 55.0)
        if rng.random() < 0.15:
            hours = float(rng.randrange(4, 16))
            add_service(p, "home", "Long Term Support: Community", "Home Support", "Direct Payment", "", start,
                        hours, "Hours", hours * 15.5)
    elif u < pa.learning_disability + pa.mental_health:
        soc = ensure_client(ctx, p, start, "Mental Health Support")
        soc.team = "Community Mental Health Team"
        add_event(p, "Assessment", start - 15, start - 3, "Support Planning / Services")
        if rng.random() < 0.5:
            hours = float(rng.randrange(5, 21))
            add_service(p, "csl", "Long Term Support: Community", "Community Supported Living",
                        "CASSR Managed Personal Budget", "Reed Support Trust", start, hours, "Hours", hours * 19.5)
        else:
            sessions = rng.randint(1, 2)
            add_service(p, "prof", "Long Term Support: Community", "Professional Support",
                        "CASSR Commissioned Support", "Community Wellbeing Service", start, sessions, "Sessions",
                        sessions * 60.0)
    elif u < pa.learning_disability + pa.mental_health + pa.physical_working_age * p.f:
        ensure_client(ctx, p, start, "Physical Support: Personal care support")
        add_event(p, "Assessment", start - 15, start - 3, "Support Planning / Services")
        start_home_support(ctx, p, start, assess=False, extras=False)
