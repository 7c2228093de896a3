"""Stratify: a whole-population run over the synthetic population on PostgreSQL, under every rule set and
both measures, as `sharedcare stratify` runs it. Target: at most 2 minutes for 100,000 patients.

Prints the first run (every assessment created) and a second run over unchanged data (nothing written), with
patients/s. Building the database (generating the extracts and loading them through the extract loaders) is
set-up, timed separately; `--database URL` reuses a database already loaded (`--keep` keeps the scratch one).
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

from common import scratch_database
from synthpop import load_population

AS_OF = date(2026, 11, 2)


def build(url: str, patients: int, folder: Path) -> None:
    """Generate the synthetic extracts and load them in-process through the extract loaders."""
    app = load_population(url, patients, folder)
    app.extensions["sharedcare"].services.database.dispose()


def reset(url: str) -> None:
    """Drop the assessments and run records of earlier runs, so the first run starts from nothing."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        pks = "SELECT pk FROM resources WHERE type IN ('RiskAssessment', 'Task')"
        for table in ("idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity", "idx_reference",
                      "idx_uri", "idx_composite", "resource_versions"):
            connection.execute(text(f"DELETE FROM {table} WHERE pk IN ({pks})"))
        connection.execute(text("DELETE FROM resources WHERE type IN ('RiskAssessment', 'Task')"))
        connection.execute(text("ANALYZE"))
    engine.dispose()


def run(url: str, label: str) -> None:
    from server.care.commands import stratify
    from server.config import Settings

    summary = stratify(Settings.from_env({}, database_url=url), AS_OF, [], 2000, progress=False)
    print(f"  {label:34s} {summary.processed:7d} patients in {summary.seconds:6.1f} s "
          f"({summary.rate:6.0f} patients/s; reading {summary.read_seconds:5.1f} s)  "
          f"{summary.created} created, {summary.updated} updated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--database", help="a database already loaded with the synthetic population")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    args = parser.parse_args()
    print(f"stratify: synthetic population, every rule set and measure, as of {AS_OF.isoformat()}, PostgreSQL")
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        if args.database:
            url = args.database
        else:
            url = stack.enter_context(scratch_database("stratify", keep=args.keep))
            build(url, args.patients, Path(scratch) / "synth")
            if args.keep:
                print(f"  kept: {url}")
        reset(url)
        run(url, "first run (all assessments new)")
        run(url, "second run (nothing changed)")
    print("  target: at most 120 s for 100,000 patients")


if __name__ == "__main__":
    main()
