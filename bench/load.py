"""Extract loading: a synthetic area (100,000 people, 20 practices) loaded into PostgreSQL, then reloaded.

Generates the GP, SWIFT and hospital extracts once (cached under the temp folder), loads the first month
into a scratch PostgreSQL database through the in-process sink with parallel worker processes (the GP
practices in parallel, each practice's files in order; then SWIFT; then the hospitals' files in parallel),
and prints rows/s and resources/s per extract, the ratio
to the fhir.resources (R4B) validate-only rate of the produced resources measured in the same run, and the
time to reload the unchanged month. Targets: first month <= 600 s, reload <= a fifth of that (120 s).

Autovacuum is off on the benchmark host; the server's own statistics keeper (`server/store/maintenance.py`)
ANALYZEs each table as it doubles, so the planner knows the row counts while the tables grow from empty.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from common import scratch_database

FIRST_TARGET = 600.0
RELOAD_TARGET = FIRST_TARGET / 5


@dataclass
class Job:
    """Extract files loaded in order by one worker (one Loader, so its reference cache carries over)."""

    source: str
    files: list[tuple[str, str]]  # (path, encoding)
    rows: int


@dataclass
class JobResult:
    source: str
    rows: int = 0
    resources: int = 0
    rejected: int = 0
    held: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def generate(out: Path, patients: int, practices: int, seed: int) -> dict:
    """The synthetic extracts (generated once per size and seed) and their summary."""
    from loaders.synth import generate as synth

    marker = out / "summary.json"
    if not marker.exists():
        started = time.perf_counter()
        summary = synth(out, patients=patients, practices=practices, seed=seed)
        summary.write_json(marker)
        print(f"generated {patients} people, {practices} practices in {time.perf_counter() - started:.0f} s: {out}")
    return json.loads(marker.read_text())


def jobs(summary: dict, root: Path, month: str) -> dict[str, list[Job]]:
    """GP and SWIFT: one job per extract folder (files in load order); hospitals: one job per file."""
    from mappings import Mappings

    order = {source: Mappings.load().files(source) for source in ("gp", "swift", "hospital")}
    grouped: dict[tuple[str, str], list[dict]] = {}
    for info in summary["files"]:
        if info["month"] != month:
            continue
        key = info["path"] if info["source"] == "hospital" else str(Path(info["path"]).parent)
        grouped.setdefault((info["source"], key), []).append(info)
    plan: dict[str, list[Job]] = {"gp": [], "swift": [], "hospital": []}
    for (source, _key), infos in grouped.items():
        infos.sort(key=lambda f: order[source].index(f["name"]))
        plan[source].append(Job(source, [(str(root / f["path"]), f["encoding"]) for f in infos],
                                sum(f["rows"] for f in infos)))
    return {source: sorted(found, key=lambda j: -j.rows) for source, found in plan.items()}


_WORKER: dict[str, object] = {}  # per worker process: the Flask app, built once


def run_job(job: Job, database_url: str) -> JobResult:
    """In a worker process: load the job's files, each in the encoding it was written in."""
    from dataclasses import replace

    from loaders.load import Loader, LoadOptions
    from loaders.sinks import InProcessSink
    from server.app import create_app
    from server.config import Settings

    if _WORKER.get("url") != database_url:
        _WORKER["url"] = database_url
        _WORKER["app"] = create_app(Settings.from_env({}, database_url=database_url, pool_size=2))
    sink = InProcessSink.from_app(_WORKER["app"], job.source)
    rejects = Path(tempfile.gettempdir()) / "sharedcare-bench-load-rejects"
    loader = Loader(sink, LoadOptions(progress=False, rejects=rejects))
    result = JobResult(job.source)
    started = time.perf_counter()
    reports = []
    for path, encoding in job.files:
        loader.options = replace(loader.options, encoding=encoding)
        reports.extend(loader.load(job.source, Path(path)).files)
    for report in reports:
        if report.fault:
            raise SystemExit(f"{report.path}: {report.fault}")
        result.rows += report.rows
        result.rejected += report.rejected
        result.held += report.held
        result.resources += report.resources
        for counts in report.outcomes.values():
            for outcome, n in counts.items():
                result.outcomes[outcome] = result.outcomes.get(outcome, 0) + n
    result.seconds = time.perf_counter() - started
    return result


def load_month(label: str, plan: dict[str, list[Job]], url: str, workers: int) -> tuple[float, dict[str, JobResult]]:
    """GP, then SWIFT (it matches the people the GP lists brought), then hospitals; jobs of each in parallel."""
    totals: dict[str, JobResult] = {}
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        for source in ("gp", "swift", "hospital"):
            phase = time.perf_counter()
            total = JobResult(source)
            for result in pool.map(run_job, plan[source], [url] * len(plan[source])):
                total.rows += result.rows
                total.resources += result.resources
                total.rejected += result.rejected
                total.held += result.held
                for outcome, n in result.outcomes.items():
                    total.outcomes[outcome] = total.outcomes.get(outcome, 0) + n
            total.seconds = time.perf_counter() - phase
            totals[source] = total
            print(f"  {label} {source:8} {total.rows:8} rows {total.resources:8} resources {total.seconds:7.1f} s "
                  f"{total.rows / total.seconds:7.0f} rows/s {total.resources / total.seconds:7.0f} resources/s  "
                  f"rejected {total.rejected} held {total.held}  {dict(sorted(total.outcomes.items()))}",
                  flush=True)
    return time.perf_counter() - started, totals


def validate_only_rate(url: str, sample: int) -> tuple[float, int]:
    """fhir.resources (R4B) model_validate of a sample of the produced resources, one core."""
    from fhir.resources.R4B import get_fhir_model_class

    engine = create_engine(url)
    with engine.connect() as connection:
        bodies = [row[0] for row in connection.execute(text(
            "SELECT v.body FROM resources r JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version "
            "WHERE r.type NOT IN ('CodeSystem', 'ValueSet', 'ConceptMap', 'StructureDefinition', "
            "'SearchParameter') AND v.body IS NOT NULL ORDER BY r.pk"))]
    engine.dispose()
    rng = random.Random(1)
    chosen = [json.loads(b) for b in (rng.sample(bodies, sample) if len(bodies) > sample else bodies)]
    started = time.perf_counter()
    for resource in chosen:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return len(chosen) / (time.perf_counter() - started), len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--practices", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2) + 1))
    parser.add_argument("--sample", type=int, default=20_000, help="Resources in the validate-only sample.")
    parser.add_argument("--data", type=Path, help="Folder for the generated extracts (default: temp folder).")
    parser.add_argument("--no-reload", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the database (its URL is printed) to study it.")
    args = parser.parse_args()
    root = args.data or Path(tempfile.gettempdir()) / (
        f"sharedcare-bench-load-p{args.patients}-g{args.practices}-s{args.seed}")
    summary = generate(root, args.patients, args.practices, args.seed)
    month = summary["months"][0]
    plan = jobs(summary, root, month)
    rows = sum(f["rows"] for f in summary["files"] if f["month"] == month)
    print(f"load: {args.patients} people, {args.practices} practices, {rows} rows in "
          f"{sum(len(j.files) for jobs_ in plan.values() for j in jobs_)} files; {args.workers} worker processes, "
          "in-process sink, PostgreSQL")
    with scratch_database("load", keep=args.keep) as url:
        if args.keep:
            print(f"  database (kept): {url}")
        first, totals = load_month("first ", plan, url, args.workers)
        reload = None
        if not args.no_reload:
            reload, _again = load_month("reload", plan, url, args.workers)
        validate_rate, validated = validate_only_rate(url, args.sample)
    resources = sum(t.resources for t in totals.values())
    print(f"  validate-only (fhir.resources R4B, 1 core, {validated} produced resources): "
          f"{validate_rate:8.0f} resources/s")
    for source, total in totals.items():
        rate = total.resources / total.seconds
        print(f"  {source:8} first month {total.rows / total.seconds:7.0f} rows/s {rate:7.0f} resources/s  "
              f"ratio to validate-only {rate / validate_rate:5.2f}")
    print(f"  first month: {first:7.1f} s for {rows} rows, {resources} resources "
          f"({resources / first:.0f} resources/s, ratio {resources / first / validate_rate:.2f})  "
          f"target <= {FIRST_TARGET:.0f} s")
    if reload is not None:
        print(f"  reload of the unchanged month: {reload:7.1f} s ({resources / reload:.0f} resources/s)  "
              f"target <= {RELOAD_TARGET:.0f} s")


if __name__ == "__main__":
    main()
