"""Read: single-resource reads by concurrent clients through gunicorn, on PostgreSQL and on SQLite.

For each backend, prints requests/s and latency of FHIR reads and the ratio to a bare Flask endpoint
returning a constant JSON body under the same gunicorn configuration. As a reference it also measures a
minimal Flask endpoint that runs the same lookup with raw psycopg (the floor any PostgreSQL-backed read
starts from). After loading, VACUUM ANALYZE (ANALYZE on SQLite), as autovacuum would in service. Load
comes from wrk; rounds alternate between the servers and medians are reported, because a shared
machine's speed drifts over a minute.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from contextlib import ExitStack
from pathlib import Path

import requests

from common import gunicorn, median, refresh_statistics, scratch_database, synthea_bundles, wrk

SET = "synthea3-master-10p.tar.gz"
LUA = """
local ids = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", ids[(n %% #ids) + 1])
end
"""


def load(base: str, bundles: list[tuple[str, bytes]]) -> list[str]:
    paths = []
    for _name, data in bundles:
        response = requests.post(f"{base}/fhir", data=data, timeout=600,
                                 headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"})
        response.raise_for_status()
        for entry in response.json()["entry"]:
            location = entry["response"].get("location", "")
            if location:
                paths.append("/fhir/" + location.split("/_history")[0])
    return paths


def alternate(targets: dict[str, tuple[str, Path | None]], clients: int, seconds: int, rounds: int
              ) -> dict[str, dict[str, float]]:
    """Median requests/s and latencies per target over alternating rounds."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for url, script in targets.values():
        wrk(url, clients, 2, script)  # warm every worker up first
    for _round in range(rounds):
        for name, (url, script) in targets.items():
            runs[name].append(wrk(url, clients, seconds, script))
    return {name: {key: median([r[key] for r in found]) for key in found[0]} for name, found in runs.items()}


def report(label: str, results: dict[str, dict[str, float]]) -> None:
    bare = results["bare Flask constant JSON"]["rps"]
    print(f"  {label}")
    for name, figures in results.items():
        ratio = figures["rps"] / bare
        print(f"    {name:32s} {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms"
              f"  non-2xx {figures['errors']:.0f}  ratio to bare {ratio:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bundles = synthea_bundles(args.shared / "data" / "synthea" / SET)
    here = str(Path(__file__).parent)
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        script = Path(scratch) / "reads.lua"
        bare = stack.enter_context(gunicorn("bare_app:create_app()", {}, ["--pythonpath", here]))
        pg_url = stack.enter_context(scratch_database("read"))
        pg = stack.enter_context(gunicorn("server.app:create_app()", {"DATABASE_URL": pg_url}))
        paths = load(pg, bundles)
        refresh_statistics(pg_url)
        random.Random(7).shuffle(paths)
        script.write_text(LUA % ", ".join(json.dumps(p) for p in paths[:2000]))
        raw_env = {"RAW_DATABASE_URL": pg_url.replace("+psycopg", "")}
        raw = stack.enter_context(gunicorn("raw_read_app:create_app()", raw_env, ["--pythonpath", here]))
        sqlite_url = f"sqlite:///{scratch}/read.db"
        from server.store.migrate import upgrade

        upgrade(sqlite_url)
        lite = stack.enter_context(gunicorn("server.app:create_app()", {"DATABASE_URL": sqlite_url}))
        lite_paths = load(lite, bundles)
        refresh_statistics(sqlite_url)
        random.Random(7).shuffle(lite_paths)
        lite_script = Path(scratch) / "reads-sqlite.lua"
        lite_script.write_text(LUA % ", ".join(json.dumps(p) for p in lite_paths[:2000]))
        results = alternate({
            "bare Flask constant JSON": (bare + "/fhir/Patient/example", None),
            "FHIR read, PostgreSQL": (pg + "/fhir/metadata", script),
            "raw psycopg lookup in Flask": (raw + "/fhir/metadata", script),
            "FHIR read, SQLite": (lite + "/fhir/metadata", lite_script),
        }, args.clients, args.seconds, args.rounds)
    print(f"read: {len(paths)} resources per database, {args.clients} connections, "
          f"{args.rounds} alternating rounds of {args.seconds} s, medians")
    report("gunicorn -c gunicorn.conf.py (the same for every server)", results)
    print("  target: FHIR read ratio to bare >= 0.5")


if __name__ == "__main__":
    main()
