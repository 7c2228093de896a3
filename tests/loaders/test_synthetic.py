"""The synthetic population: exactly the injected invalid rows are rejected; a reload and the next month."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from loaders.report import LoadReport
from loaders.synth import NoiseRates, SynthSummary, generate
from mappings import Mappings

from .conftest import load, search, versions

REASONS = {"bad_nhs_check_digit": "modulus 11", "bad_date": "date", "unknown_code": "unknown code",
           "missing_required": "a value is required", "duplicate_id": "duplicate id",
           "future_date": "is after the extract date", "end_before_start": "is before",
           "death_before_birth": "is before", "implausible_age": "makes an age of", "bad_quantity": "allowed"}
PLAUSIBILITY = ("future_date", "end_before_start", "death_before_birth", "implausible_age", "bad_quantity")
NOISE = NoiseRates(nhs_spaces=0.05, swift_blank_nhs=0.05, crlf_files=0.5, cp1252_files=1.0, utf8_bom_files=0.5,
                   bad_nhs_check_digit=0.01, bad_date=0.01, unknown_code=0.01, missing_required=0.01,
                   duplicate_id=0.01, future_date=0.01, end_before_start=0.01, death_before_birth=0.01,
                   implausible_age=0.01, bad_quantity=0.01)


def load_summary(app: Flask, root: Path, summary: SynthSummary, mappings: Mappings, month: str,
                 rejects: Path) -> list[LoadReport]:
    """Load one month file by file, each in the encoding it was written in (as an operator would)."""
    reports = []
    for source in ("gp", "swift", "hospital"):
        order = mappings.files(source)
        files = sorted((f for f in summary.files if f.source == source and f.month == month),
                       key=lambda f: (f.org, order.index(f.name)))
        for info in files:
            reports.append(load(app, source, root / info.path, mappings, rejects=rejects, encoding=info.encoding))
    return reports


def rejected_lines(reports: list[LoadReport], root: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """(file, line) -> (column, reason) of every rejected row."""
    found = {}
    for report in reports:
        for file in report.files:
            if file.rejects_file:
                with file.rejects_file.open(encoding="utf-8", newline="") as handle:
                    for row in csv.DictReader(handle):
                        found[(Path(file.path).relative_to(root).as_posix(), int(row["line"]))] = (
                            row["column"], row["reason"])
    return found


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    root = tmp_path_factory.mktemp("noisy")
    return root, generate(root, patients=300, practices=2, seed=11, noise=NOISE)


def test_exactly_the_injected_invalid_rows_are_rejected(new_app: Callable[[], Flask], noisy: tuple[Path, SynthSummary],
                                                        mappings: Mappings, tmp_path: Path) -> None:
    root, summary = noisy
    assert {r.kind for r in summary.invalid} == set(REASONS)
    app = new_app()
    reports = load_summary(app, root, summary, mappings, "2026-10", tmp_path)
    assert not [f for r in reports for f in r.files if f.fault]
    rejected = rejected_lines(reports, root)
    assert set(rejected) == {(r.path, r.line) for r in summary.invalid}
    for row in summary.invalid:
        column, reason = rejected[(row.path, row.line)]
        assert REASONS[row.kind] in reason, (row, reason)
        if row.kind in PLAUSIBILITY:  # well formed, rejected by the rule on the spoiled column
            assert row.detail.split("=")[0] in column.split(", "), (row, column, reason)
    implausible = Counter(r.kind for r in summary.invalid if r.kind in PLAUSIBILITY)
    assert sum(implausible.values()) == sum(1 for _c, reason in rejected.values() if any(
        words in reason for words in ("after the extract date", "is before", "an age of", "allowed")))
    held = [f for r in reports for f in r.files if f.held]
    assert all(f.source == "hospital" for f in held)  # only people from outside the area wait for a record
    rows = sum(f.rows for r in reports for f in r.files)
    loaded = sum(f.loaded + f.rejected + f.held for r in reports for f in r.files)
    assert rows == loaded == sum(f.rows for f in summary.files)

    before = versions(app)
    again = load_summary(app, root, summary, mappings, "2026-10", tmp_path)
    assert versions(app) == before
    assert set(rejected_lines(again, root)) == set(rejected)


def test_the_next_month_updates_in_place(new_app: Callable[[], Flask], mappings: Mappings,
                                         tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    root = tmp_path_factory.mktemp("months")
    summary = generate(root, patients=800, practices=2, seed=5, months=2, noise=NoiseRates.none())
    app = new_app()
    first = load_summary(app, root, summary, mappings, "2026-10", tmp_path)
    assert all(r.exit_code() == 0 for r in first)
    people = len(search(app, "Patient"))
    second = load_summary(app, root, summary, mappings, "2026-11", tmp_path)
    assert all(r.exit_code() == 0 for r in second), [r.render() for r in second]
    counts: dict[str, int] = {}
    for report in second:
        for kind, c in report.by_type().items():
            for outcome, n in c.items():
                counts[f"{kind} {outcome}"] = counts.get(f"{kind} {outcome}", 0) + n
    assert counts.get("Patient updated", 0) > 0 and counts.get("Encounter created", 0) > 0
    assert counts.get("Patient unchanged", 0) > people * 0.8  # most people did not change
    newcomers = summary.people["newcomers"]
    assert people <= len(search(app, "Patient")) <= people + newcomers + 5
    services = search(app, "EpisodeOfCare")
    assert len({s["identifier"][0]["value"] for s in services}) == len(services)  # never duplicated
