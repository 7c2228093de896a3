"""Building the demo area: generate a synthetic area with Jean in it, load its first month, stratify, make a
year of case management, load the next month; a few lines of output (a progress bar on a terminal)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .demo_story import END, YEAR_START, admissions_after_enrolment, build_story

SOURCES = ("gp", "swift", "hospital")
FIRST_MONTH = "2026-10"
MONTHS = 2
LINE_EVERY_S = 5.0  # without a terminal: a plain line at most this often while loading


@dataclass(frozen=True)
class DemoSize:
    """The demo area's size: people on the practice lists, practices, and the seed of the synthetic area."""

    patients: int = 2000
    practices: int = 3
    seed: int = 2026


@dataclass
class Loaded:
    """What the loads of one month did, summed."""

    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    held: int = 0

    def describe(self) -> str:
        held = " (rows about people the record does not know yet, kept for a later extract)" if self.held else ""
        return f"{self.rows:,} rows read, {self.loaded:,} loaded, {self.rejected:,} rejected, {self.held:,} held{held}"


class Lap:
    """Seconds since the last lap, as text for a line of output."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self) -> str:
        now = time.monotonic()
        spent, self.last = now - self.last, now
        return f"in {spent:.0f} s"


def generate_area(folder: Path, size: DemoSize) -> dict[str, Any]:
    """The synthetic area's extracts (two monthly snapshots, Jean's rows added), generated once; its summary."""
    from .synth import generate
    from .synth.jean import add_jean

    summary_path = folder / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if summary.get("months") == months() and summary.get("patients") == size.patients and \
                len(summary.get("practices", [])) == size.practices and summary.get("seed") == size.seed:
            return summary
        summary_path.unlink()
    made = generate(folder, patients=size.patients, practices=size.practices, seed=size.seed, months=MONTHS,
                    first_month=FIRST_MONTH)
    add_jean(folder, made)
    made.write_json(summary_path)
    return json.loads(summary_path.read_text(encoding="utf-8"))


def months() -> list[str]:
    year, month = (int(part) for part in FIRST_MONTH.split("-"))
    return [f"{year + (month - 1 + k) // 12:04d}-{(month - 1 + k) % 12 + 1:02d}" for k in range(MONTHS)]


def extract_folders(folder: Path, label: str) -> list[tuple[str, Path]]:
    """(source, folder) of every extract of the month, GP first (hospitals and the council then find the people)."""
    found = []
    for source in SOURCES:
        pattern = f"*/{label}-*" if source == "swift" else f"*/{label}"
        found += [(source, path) for path in sorted((folder / source).glob(pattern)) if path.is_dir()]
    return found


def load_month(app: Any, mappings: Any, folder: Path, label: str, echo: Callable[[str], None],
               tty: bool) -> Loaded:
    """Load every extract of one month in-process with the project's mappings; a progress bar on a terminal,
    else a line now and then."""
    from .load import Loader, LoadOptions
    from .sinks import InProcessSink

    extracts = extract_folders(folder, label)
    total = Loaded()
    last_line = time.monotonic()
    with tqdm(total=len(extracts), unit="extract", desc=f"  loading {label}", disable=not tty, leave=False) as bar:
        for done, (source, path) in enumerate(extracts, 1):
            sink = InProcessSink.from_app(app, source)
            report = Loader(sink, LoadOptions(progress=False), mappings=mappings).load(source, path)
            for file in report.files:
                total.rows += file.rows
                total.loaded += file.loaded
                total.rejected += file.rejected
                total.held += file.held
            bar.update(1)
            if not tty and (time.monotonic() - last_line >= LINE_EVERY_S or done == len(extracts)):
                echo(f"  loading {label}: {done} of {len(extracts)} extracts, {total.rows:,} rows")
                last_line = time.monotonic()
    return total


def build(settings: Any, folder: Path, size: DemoSize, echo: Callable[[str], None] = print,
          tty: bool | None = None) -> dict[str, Any]:
    """Build the demo area into the (empty) database of `settings`; returns the synthetic area's summary."""
    from mappings import Mappings
    from server.app import create_app
    from server.care.commands import stratify

    tty = sys.stdout.isatty() if tty is None else tty
    started = time.monotonic()
    first, after = months()
    echo(f"Generating a synthetic area into {folder}: {size.patients:,} people, {size.practices} practices, "
         f"seed {size.seed}, extracts for {first} and {after}, with Jean Hardy of the case study")
    summary = generate_area(folder, size)
    lap = Lap()
    app = create_app(settings)
    try:
        api = app.extensions["sharedcare"]
        echo(f"Loading the GP, SWIFT and hospital extracts of {first} through the extract loaders")
        mappings = Mappings.load(settings.project_base_uri)  # as `sharedcare load` maps, under this base
        loaded = load_month(app, mappings, folder, first, echo, tty)
        echo(f"  {loaded.describe()} {lap()}. {faults_line(summary, folder)}")
        echo(f"Stratifying the population as of {END} under every rule set and measure")
        run = stratify(settings, END, [], 2000, progress=tty)
        echo(f"  {run.describe()}")
        lap()
        echo(f"Building a year of case management ({YEAR_START:%B %Y} to {END:%B %Y}) through the "
             "case-management operations")
        with tqdm(desc="  case management", unit="step", disable=not tty, leave=False) as bar:
            story = build_story(api, list(summary["practices"]), lambda: bar.update(1))
        echo(f"  {story.describe()} {lap()}")
        admitted = admissions_after_enrolment(folder, after, story)
        echo(f"Loading the extracts of {after}: admissions and social care package changes after enrolment")
        later = load_month(app, mappings, folder, after, echo, tty)
        echo(f"  {later.describe()} {lap()} (the faulty rows on purpose, as above); {len(admitted)} case-managed "
             "people in hospital at the extract's date: their case managers have an alert and a task each")
    finally:
        api.services.database.dispose()
    echo(f"The demo area is built ({time.monotonic() - started:.0f} s).")
    return summary


def faults_line(summary: dict[str, Any], folder: Path) -> str:
    """Why rows were rejected: the synthetic extracts carry faulty rows on purpose; where they are listed."""
    share = len(summary.get("invalid", [])) / max(1, sum(f.get("rows", 0) for f in summary.get("files", [])))
    return (f"The synthetic extracts carry faulty rows on purpose (about {share:.1%} of rows: bad NHS numbers, "
            f"impossible dates, unknown codes, implausible values) to show the loaders' checks; each rejected or "
            f"held row is listed, with its reason, in the *.rejects.csv and *.held.csv files beside its extract "
            f"under {folder}")
