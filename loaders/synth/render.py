"""Snapshot rendering: a person's state as the rows each extract holds at the end of a month."""

from __future__ import annotations

from dataclasses import dataclass

from .area import PROVIDERS
from .context import Context
from .records import ENDED, Person
from .writer import Sink

GENDER = {"M": "Male", "F": "Female", "I": "Other", "U": "Unknown"}
EMPTY_DIAGS = [""] * 20


@dataclass
class MonthSinks:
    """The open files of one monthly snapshot and its date windows."""

    end: int  # last day of the extract month
    hospital_from: int  # first day of the 24-month hospital / social care window
    recent_from: int  # first day of the 12-month consultation / acute medicine window
    gp: list[tuple[Sink, Sink, Sink, Sink]]  # per practice: patients, coded entries, medications, consultations
    clients: Sink
    services: Sink
    events: Sink
    changes: Sink | None
    admissions: list[Sink]
    ae: list[Sink]


def render(ctx: Context, p: Person, m: MonthSinks, untraced: bool) -> None:
    if p.gp and p.regs:
        _gp(ctx, p, m)
    if p.social is not None and p.social.first is not None and p.social.first <= m.end:
        _swift(ctx, p, m, untraced)
    if p.spells or p.attendances:
        _hospital(ctx, p, m)


def _gp(ctx: Context, p: Person, m: MonthSinks) -> None:
    iso = ctx.fmt.iso
    end = m.end
    keep_from = end - 730
    practices = ctx.area.practices
    clinical = None
    for reg in p.regs:
        if reg.start > end or (reg.end is not None and reg.end < keep_from):
            continue
        pr = practices[reg.practice]
        ended = reg.end is not None and reg.end <= end
        as_of = reg.end if ended and reg.end is not None else end
        line, pc = p.address_on(as_of)
        death = p.death if p.death is not None and p.death <= end and (reg.end is None or p.death <= reg.end) else None
        m.gp[reg.practice][0].write([
            p.nhs, pr.ods, f"P{p.pnum}{reg.no}", p.family, p.given, iso(p.dob), p.sex, pc, line, p.telecom,
            iso(reg.start), iso(reg.end) if ended else "", iso(death), reg.gmc])
        clinical = reg
    if clinical is None:
        return
    for seq, regno, day, ctype, gmc in p.consults:
        if m.recent_from <= day <= end:
            m.gp[p.regs[regno].practice][3].write([f"C{p.pnum}{regno}{seq:04d}", p.nhs, iso(day), ctype, gmc])
    if p.left is not None and p.left <= end:
        return  # the record went with them to a practice outside the area
    pr = practices[clinical.practice]
    sinks = m.gp[clinical.practice]
    prefix = f"{p.pnum}{clinical.no}"
    legacy = pr.legacy
    snomed_from = ctx.snomed_from
    for c in p.coded:
        if c.effective > end:
            continue
        code = c.code
        system, value, term = "SNOMED", code.snomed, code.snomed_term
        if legacy and c.effective < snomed_from and c.legacy_u < 0.75:
            if legacy == "READV2" and code.readv2:
                system, value, term = "READV2", code.readv2, code.readv2_term
            elif legacy == "CTV3" and code.ctv3:
                system, value, term = "CTV3", code.ctv3, code.ctv3_term
        if c.end is not None and c.end <= end:
            status, until = c.end_status, iso(c.end)
        else:
            status, until = "active", ""
        sinks[1].write([f"E{prefix}{c.seq:03d}", p.nhs, c.entry_type, system, value, term, iso(c.effective),
                        status, until])
    recent_from = m.recent_from
    for med in p.meds:
        if med.authorised > end:
            continue
        stopped = med.end is not None and med.end <= end
        if med.ptype == "acute":
            if med.authorised < recent_from:
                continue
            last = med.authorised
        else:
            if stopped and med.end is not None and med.end < keep_from:
                continue
            upto = med.end if stopped and med.end is not None else end
            cycle = med.med.days
            last = med.authorised + ((upto - med.authorised) // cycle) * cycle
        info = med.med
        sinks[2].write([f"M{prefix}{med.seq:03d}", p.nhs, "", info.drug_name, med.ptype,
                        med.end_status if stopped else "active", iso(med.authorised),
                        iso(med.end) if stopped else "", iso(last), info.dosage, info.quantity, info.quantity_unit])


def service_rows(ctx: Context, p: Person, end: int) -> list[list[str]]:
    soc = p.social
    if soc is None:
        return []
    dmy = ctx.fmt.dmy
    keep_from = end - 730
    person_id = f"SW{p.pnum}"
    rows = []
    for svc in soc.services:
        if svc.start > end:
            continue
        v = svc.latest(end)
        if v is None or (v.status == ENDED and v.end is not None and v.end < keep_from):
            continue
        rows.append([f"SV{p.pnum}{svc.seq:02d}", person_id, svc.stype, svc.component, svc.delivery, svc.provider,
                     dmy(svc.start), dmy(v.end), f"{v.units:g}", svc.unit_type, f"{v.cost:.2f}", v.status, v.reason,
                     ctx.fmt.dmy_hm(v.date, v.minute)])
    return rows


def _swift(ctx: Context, p: Person, m: MonthSinks, untraced: bool) -> None:
    soc = p.social
    assert soc is not None
    dmy = ctx.fmt.dmy
    end = m.end
    person_id = f"SW{p.pnum}"
    death = p.death if p.death is not None and p.death <= end else None
    _, pc = p.address_on(death if death is not None else end)
    m.clients.write([person_id, "" if untraced else p.nhs, p.family, p.given, dmy(p.dob), GENDER[p.sex], pc,
                     soc.accommodation_on(end), soc.psr, soc.carer, dmy(death)])
    for row in service_rows(ctx, p, end):
        m.services.write(row)
    keep_from = end - 730
    for ev in soc.events:
        if ev.start > end or ev.start < keep_from:
            continue
        done = ev.end is not None and ev.end <= end
        m.events.write([f"EV{p.pnum}{ev.seq:03d}", person_id, ev.etype, dmy(ev.start), dmy(ev.end) if done else "",
                        ev.outcome if done else "", ev.worker, ev.team])


def _hospital(ctx: Context, p: Person, m: MonthSinks) -> None:
    iso = ctx.fmt.iso
    end = m.end
    start = m.hospital_from
    for s in p.spells:
        if s.admidate > end or s.admidate < start:
            continue
        out = s.disdate <= end
        diags = s.diags + EMPTY_DIAGS[len(s.diags):]
        m.admissions[s.provider].write([
            f"S{p.pnum}{s.seq:03d}", p.nhs, PROVIDERS[s.provider], iso(s.admidate), s.admimeth, s.admisorc,
            iso(s.disdate) if out else "", s.dismeth if out else "", s.disdest if out else "", s.classpat,
            s.mainspef, *diags])
    iso_hm = ctx.fmt.iso_hm
    for a in p.attendances:
        if a.arrival > end or a.arrival < start:
            continue
        gone = a.departure <= end
        m.ae[a.provider].write([
            f"A{p.pnum}{a.seq:03d}", p.nhs, PROVIDERS[a.provider], iso_hm(a.arrival, a.arr_min),
            iso_hm(a.departure, a.dep_min) if gone else "", a.disposal if gone else "", a.complaint])
