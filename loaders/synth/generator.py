"""generate(): runs the simulation month by month and streams every snapshot to disk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from . import layout
from .area import COUNCIL, PROVIDERS, build_area
from .context import CONSULT_MONTHS, HISTORY_MONTHS, Context
from .dates import month_label, parse_month
from .nhs import PERSON_SPACE, NhsAllocator
from .noise import NoiseRates
from .params import Params
from .population import new_person
from .render import MonthSinks, render, service_rows
from .rng import make_rng, mix, unit
from .simulate import advance
from .summary import FileInfo, InvalidRow, SynthSummary
from .tables import load_tables
from .writer import Sink

MAX_PEOPLE = int(PERSON_SPACE * 0.9 * 10 / 11)


def _arrivals(seed: int, patients: int, rate: float, k: int) -> int:
    rng = make_rng(seed, "arrivals", k)
    return max(0, round(patients * rate * (0.75 + 0.5 * rng.random())))


def _people(base: int, swift_only: int, arrivals: list[int], first_mi: int, k: int) -> Iterator[tuple[int, str, int]]:
    """(index, kind, arrival month) of everyone known by snapshot k, in a fixed order."""
    for i in range(base):
        yield i, "gp", 0
    for i in range(base, base + swift_only):
        yield i, "swift", 0
    idx = base + swift_only
    for j in range(1, k + 1):
        for _ in range(arrivals[j]):
            yield idx, "arrival", first_mi + j
            idx += 1


def _open(out: Path, ctx: Context, k: int, label: str, noise: NoiseRates, log: list[InvalidRow]) -> MonthSinks:
    seed = ctx.seed
    mi = ctx.first_mi + k
    end = ctx.me(mi)
    gp: list[tuple[Sink, Sink, Sink, Sink]] = []
    for pr in ctx.area.practices:
        base = f"gp/{pr.ods}/{label}"
        patients, coded, meds, consultations = (Sink(out, f"{base}/{spec.name}", spec, pr.ods, label, noise, seed, log)
                                                for spec in layout.GP_FILES)
        gp.append((patients, coded, meds, consultations))
    swift_dir = f"swift/{COUNCIL}/{date.fromordinal(end).isoformat()}"

    def swift(spec: layout.FileSpec) -> Sink:
        return Sink(out, f"{swift_dir}/{spec.name}", spec, COUNCIL, label, noise, seed, log)

    hosp = {spec.name: [Sink(out, f"hospital/{code}/{label}/{spec.name}", spec, code, label, noise, seed, log)
                        for code in PROVIDERS] for spec in layout.HOSPITAL_FILES}
    return MonthSinks(
        end=end,
        hospital_from=ctx.ms(mi - (HISTORY_MONTHS - 1)),
        recent_from=ctx.ms(mi - (CONSULT_MONTHS - 1)),
        gp=gp,
        clients=swift(layout.CLIENTS),
        services=swift(layout.SERVICES),
        events=swift(layout.EVENTS),
        changes=swift(layout.SERVICES_CHANGES) if k > 0 else None,
        admissions=hosp["admissions.csv"],
        ae=hosp["ae_attendances.csv"],
    )


def _close(m: MonthSinks) -> list[FileInfo]:
    sinks = [s for group in m.gp for s in group]
    sinks += [m.clients, m.services, m.events]
    if m.changes is not None:
        sinks.append(m.changes)
    sinks += m.admissions + m.ae
    return [s.close() for s in sinks]


def generate(out: Path, *, patients: int, practices: int, seed: int, months: int = 1,
             first_month: str = "2026-10", noise: NoiseRates | None = None) -> SynthSummary:
    """Write ``months`` monthly snapshots of the GP, SWIFT and hospital extracts for a synthetic area.

    ``patients`` people are on the practice lists at the start (plus about 0.4 % council clients with
    no practice in the area, and newcomers in later months); the same arguments always give
    byte-identical files. Rows stream to disk: memory does not grow with the population.
    """
    if patients < 1 or practices < 1 or months < 1:
        raise ValueError("patients, practices and months must be at least 1")
    if practices > 9999:
        raise ValueError("at most 9999 practices (ODS codes Y90001 to Y99999)")
    if patients > MAX_PEOPLE * 0.9:
        raise ValueError(f"at most {int(MAX_PEOPLE * 0.9)} patients fit in the NHS number test range")
    noise = NoiseRates() if noise is None else noise
    out = Path(out)
    params = Params()
    run_seed = mix(seed, "run")
    tables = load_tables()
    area = build_area(tables, run_seed, patients, practices)
    first_mi = parse_month(first_month)
    ctx = Context(tables, area, params, run_seed, first_mi, NhsAllocator(run_seed))
    swift_only = max(2, round(patients * params.swift_only_share))
    arrivals = [0] + [_arrivals(run_seed, patients, params.arrivals_per_month, k) for k in range(1, months)]
    labels = [month_label(first_mi + k) for k in range(months)]
    summary = SynthSummary(out=out, seed=seed, patients=patients, practices=[p.ods for p in area.practices],
                           council=COUNCIL, providers=list(PROVIDERS), months=labels)
    summary.people = {"listed_at_start": patients, "council_only": swift_only, "newcomers": sum(arrivals)}
    for k, label in enumerate(labels):
        mi = first_mi + k
        sinks = _open(out, ctx, k, label, noise, summary.invalid)
        prev_end = ctx.me(mi - 1)
        for idx, kind, arrival_mi in _people(patients, swift_only, arrivals, first_mi, k):
            p = new_person(ctx, idx, kind, arrival_mi)
            before: dict[str, list[str]] = {}
            if k > 0:
                advance(ctx, p, mi - 1)
                if p.social is not None and sinks.changes is not None:
                    before = {r[0]: r for r in service_rows(ctx, p, prev_end)}
            advance(ctx, p, mi)
            untraced = unit(run_seed, "untraced", idx) < noise.swift_blank_nhs
            render(ctx, p, sinks, untraced)
            if sinks.changes is not None and p.social is not None:
                for row in service_rows(ctx, p, sinks.end):
                    if before.get(row[0]) != row:
                        sinks.changes.write(row)
        summary.files.extend(_close(sinks))
    return summary
