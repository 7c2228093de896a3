"""Holdings: keeping a hospital's held people as rows (`server/store/search/holdings.py`), on a synthetic
population, each figure against evaluating the hospital whole in the same run.

A hospital holds the people of its recent admissions (`profiles/access/hospital.yaml`: an Encounter at the
hospital in progress or within `{days_ago:30}`). Printed, as medians of --rounds, each inside a transaction
rolled back:
- evaluating the hospital whole (its rows made the first time one of its clients calls);
- bringing rows made one and seven days earlier up to today, through the admissions whose dates the days
  crossed (what the first call of each new day does);
- finding which of 1, 10 and 100 people the hospital holds (what a write naming them does), tested person by
  person on their own admissions, against the same people tested against the hospital's every admission
  gathered first (the statement before 2026-12-08, which PostgreSQL planned for a dozen people as for all).
The synthetic admissions are older than 30 days, so the window is widened until the hospital holds about half
the people it ever admitted."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from case_status import HOSPITAL

from common import scratch_database, server_version
from synthpop import load_population

DAY_US = 86_400_000_000


def timed(services: Any, rounds: int, work: Callable[[Any], object]) -> tuple[float, object]:
    """Median milliseconds of `work(connection)` over `rounds`, each in a transaction rolled back; its last answer."""
    times, answer = [], None
    for _round in range(rounds):
        with services.database.writer.connect() as connection, connection.begin() as unit:
            started = time.perf_counter()
            answer = work(connection)
            times.append((time.perf_counter() - started) * 1000)
            unit.rollback()
    return statistics.median(times), answer


def admission_ends(services: Any, organization: str) -> list[int]:
    """The end (or last instant) of each of the hospital's admissions, in microseconds, ended ones only."""
    from sqlalchemy import select

    from server.store.schema import idx_date

    builder = services.holdings.builder
    admissions = builder.matching("Encounter", [("service-provider:Organization.identifier", organization)])
    key = builder.registry.get("Encounter", "date").key
    now = int(datetime.now(UTC).timestamp() * 1_000_000)
    with services.database.writer.connect() as connection:
        ends = connection.execute(select(idx_date.c.hi).where(idx_date.c.sp == key,
                                                              idx_date.c.pk.in_(admissions))).scalars()
        return sorted(end for end in ends if end < now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", help="a database already loaded with a synthetic population")
    args = parser.parse_args()
    from sqlalchemy import func, literal, select

    from server.app import create_app
    from server.config import Settings
    from server.security.policy import AccessPolicy
    from server.store.among import among
    from server.store.schema import reach_people, resources
    from server.store.search.holdings import holder_key, holds_patient

    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        url = args.database or stack.enter_context(scratch_database("holdings"))
        if args.database:
            from server.store.migrate import upgrade

            upgrade(url)
            app = create_app(Settings.from_env({}, database_url=url))
        else:
            app = load_population(url, args.patients, Path(scratch) / "synth", seed=7)
        services = app.extensions["sharedcare"].services
        holdings = services.holdings
        ends = admission_ends(services, HOSPITAL)
        now = datetime.now(UTC)
        days = max(31, (int(now.timestamp() * 1_000_000) - ends[len(ends) // 2]) // DAY_US)
        policy = AccessPolicy.from_data({"kind": "hospital", "patients": [{
            "search": f"Encounter?service-provider:Organization.identifier={{organization}}&date=ge{{days_ago:{days}}}",
            "patient": "subject"}]}, "bench")

        def whole(connection: Any) -> object:
            holdings.evaluate(connection, policy, HOSPITAL, now, None)
            return None

        def caught_up(back: int) -> Callable[[Any], object]:
            def work(connection: Any) -> object:
                people = holdings.passing_people(connection, policy, HOSPITAL, (now - timedelta(days=back)).date()
                                                 .isoformat(), now)
                holdings.evaluate(connection, policy, HOSPITAL, now, people)
                return people
            return work

        def held(people: list[str], row_by_row: bool) -> Callable[[Any], object]:
            def work(connection: Any) -> object:
                person = resources.alias("person")
                found = select(literal("x"), person.c.id).where(
                    person.c.type == "Patient", person.c.deleted.is_(False),
                    holds_patient(holdings.builder, policy, HOSPITAL, now, person, row_by_row=row_by_row),
                    among(person.c.id, people, True))
                return len(connection.execute(found).all())
            return work

        base, _ = timed(services, args.rounds, whole)
        with services.database.writer.connect() as connection, connection.begin() as unit:
            everyone = list(connection.execute(select(resources.c.id).where(resources.c.type == "Patient")).scalars())
            holdings.evaluate(connection, policy, HOSPITAL, now, None)
            held_now = connection.execute(select(func.count()).select_from(reach_people).where(
                reach_people.c.holder == holder_key(policy, HOSPITAL))).scalar()
            unit.rollback()
        print(f"holdings: {len(everyone):,} people, hospital {HOSPITAL.rpartition('|')[2]} with {len(ends):,} ended "
              f"admissions; window widened to {days} days, holding {held_now:,} people; medians of {args.rounds}; "
              f"server at {server_version()}")
        print(f"  {'evaluating the hospital whole':58s} {base:8.1f} ms   1.00")
        for back in (1, 7):
            spent, people = timed(services, args.rounds, caught_up(back))
            count = "whole" if people is None else f"{len(people)} people"  # type: ignore[arg-type]
            label = f"rows made {back} day{'s' if back > 1 else ''} earlier brought up to today ({count})"
            print(f"  {label:58s} {spent:8.1f} ms  {spent / base:5.2f}")
        rng = random.Random(5)
        for size in (1, 10, 100):
            people = rng.sample(everyone, size)
            apart, found = timed(services, args.rounds, held(people, True))
            gathered, again = timed(services, args.rounds, held(people, False))
            assert found == again, (found, again)
            label = f"which of {size} people it holds ({found} held), person by person"
            print(f"  {label:58s} {apart:8.1f} ms  {apart / base:5.2f}")
            label = "    the same, against all its admissions gathered first"
            print(f"  {label:58s} {gathered:8.1f} ms  {gathered / base:5.2f}")
        services.database.dispose()


if __name__ == "__main__":
    main()
