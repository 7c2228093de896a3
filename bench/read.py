"""Read: single-resource reads by concurrent clients through gunicorn, on PostgreSQL and on SQLite, with
authentication and audit on (every FHIR read carries a bearer token and writes its audit record).

For each backend, prints requests/s and latency of FHIR reads and the ratio to a bare Flask endpoint
returning a constant JSON body under the same gunicorn configuration. The reads are made as an
`integration` client (the whole record) and, on PostgreSQL, as a `gp` client whose practice holds the
people read (its reach, in every query). The 10 Synthea patients are registered at two practices
(generalPractitioner, Organizations with ODS codes); the resources read are those within the first
practice's reach (its patients' records and the shared Organizations, Practitioners, Locations and
Medications), the same for both clients. As a reference it also measures a minimal Flask endpoint that
runs the same lookup with raw psycopg (no authentication, no audit: the floor any PostgreSQL-backed read
starts from). After loading, VACUUM ANALYZE (ANALYZE on SQLite), as autovacuum would in service. Load
comes from wrk, each round with a token fresh from the token endpoint; rounds alternate between the
servers and medians are reported, because a shared machine's speed drifts over a minute.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from contextlib import ExitStack
from pathlib import Path

from common import (
    INTEGRATION,
    ODS,
    Tokens,
    client_tokens,
    gunicorn,
    median,
    practice_organizations,
    refresh_statistics,
    registered_at,
    scratch_database,
    server_version,
    session_as,
    synthea_bundles,
    wrk,
)

SET = "synthea3-master-10p.tar.gz"
PRACTICES = ("A81001", "A81002")  # the 10 patients alternate between them; the gp client is the first
GP_SCOPE = "system/*.rs"
READS = 2000
LUA = """
local ids = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", ids[(n %% #ids) + 1])
end
"""


def load(tokens: Tokens, bundles: list[tuple[str, bytes]]) -> dict[str, list[str]]:
    """Post the bundles as the integration client; the paths created, by practice ("" for the shared ones)."""
    session = session_as(tokens)
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    session.post(f"{tokens.fhir_base}", json=practice_organizations(PRACTICES), headers=headers,
                 timeout=60).raise_for_status()
    paths: dict[str, list[str]] = {"": []}
    patients = 0
    for name, data in bundles:
        bundle = json.loads(data)
        practice = ""
        if "Information" not in name:
            practice = PRACTICES[patients % len(PRACTICES)]
            patients += 1
            registered_at(bundle, practice)
        response = session.post(tokens.fhir_base, json=bundle, timeout=600, headers=headers)
        response.raise_for_status()
        for entry in response.json()["entry"]:
            location = entry["response"].get("location", "")
            if location:
                paths.setdefault(practice, []).append("/fhir/" + location.split("/_history")[0])
    return paths


def reads_in_reach(paths: dict[str, list[str]], gp: Tokens, seed: int) -> list[str]:
    """READS random paths of the first practice's reach, each checked by a read as the gp client."""
    candidates = paths[""] + paths[PRACTICES[0]]
    random.Random(seed).shuffle(candidates)
    session = session_as(gp)
    chosen, refused = [], 0
    for path in candidates:
        if len(chosen) == READS:
            break
        if session.get(gp.base + path, timeout=30).status_code == 200:
            chosen.append(path)
        else:
            refused += 1
    if refused:
        print(f"  left out {refused} resources the gp client does not reach")
    return chosen


def lua(folder: Path, name: str, paths: list[str]) -> Path:
    script = folder / name
    script.write_text(LUA % ", ".join(json.dumps(p) for p in paths))
    return script


def alternate(targets: dict[str, tuple[str, Path | None, Tokens | None]], clients: int, seconds: int, rounds: int
              ) -> dict[str, dict[str, float]]:
    """Median requests/s and latencies per target over alternating rounds (a fresh token for each)."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for url, script, tokens in targets.values():
        wrk(url, clients, 2, script, tokens.header(fresh=True) if tokens else None)  # warm every worker up first
    for _round in range(rounds):
        for name, (url, script, tokens) in targets.items():
            runs[name].append(wrk(url, clients, seconds, script, tokens.header(fresh=True) if tokens else None))
    return {name: {key: median([r[key] for r in found]) for key in found[0]} for name, found in runs.items()}


def report(label: str, results: dict[str, dict[str, float]]) -> None:
    bare = results["bare Flask constant JSON"]["rps"]
    print(f"  {label}")
    for name, figures in results.items():
        ratio = figures["rps"] / bare
        print(f"    {name:36s} {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms"
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
        folder = Path(scratch)
        bare = stack.enter_context(gunicorn("bare_app:create_app()", {}, ["--pythonpath", here]))
        pg_url = stack.enter_context(scratch_database("read"))
        pg = stack.enter_context(gunicorn("server.app:create_app()", {"DATABASE_URL": pg_url}))
        pg_integration = client_tokens(pg_url, pg, *INTEGRATION)
        pg_gp = client_tokens(pg_url, pg, "gp", f"{ODS}|{PRACTICES[0]}", GP_SCOPE)
        paths = load(pg_integration, bundles)
        refresh_statistics(pg_url)
        script = lua(folder, "reads.lua", reads_in_reach(paths, pg_gp, 7))
        raw_env = {"RAW_DATABASE_URL": pg_url.replace("+psycopg", "")}
        raw = stack.enter_context(gunicorn("raw_read_app:create_app()", raw_env, ["--pythonpath", here]))
        sqlite_url = f"sqlite:///{scratch}/read.db"
        from server.store.migrate import upgrade

        upgrade(sqlite_url)
        lite = stack.enter_context(gunicorn("server.app:create_app()", {"DATABASE_URL": sqlite_url}))
        lite_integration = client_tokens(sqlite_url, lite, *INTEGRATION)
        lite_gp = client_tokens(sqlite_url, lite, "gp", f"{ODS}|{PRACTICES[0]}", GP_SCOPE)
        lite_paths = load(lite_integration, bundles)
        refresh_statistics(sqlite_url)
        lite_script = lua(folder, "reads-sqlite.lua", reads_in_reach(lite_paths, lite_gp, 7))
        results = alternate({
            "bare Flask constant JSON": (bare + "/fhir/Patient/example", None, None),
            "FHIR read, PostgreSQL": (pg + "/fhir/metadata", script, pg_integration),
            "FHIR read, PostgreSQL, gp client": (pg + "/fhir/metadata", script, pg_gp),
            "raw psycopg lookup in Flask": (raw + "/fhir/metadata", script, None),
            "FHIR read, SQLite": (lite + "/fhir/metadata", lite_script, lite_integration),
        }, args.clients, args.seconds, args.rounds)
    print(f"read: {READS} of {sum(len(p) for p in paths.values())} resources per database (those of practice "
          f"{PRACTICES[0]}'s reach), {args.clients} connections, {args.rounds} alternating rounds of "
          f"{args.seconds} s, medians; bearer tokens and audit on (integration client unless named); "
          f"server at {server_version()}")
    report("gunicorn -c gunicorn.conf.py (the same for every server)", results)
    print("  target: FHIR read ratio to bare >= 0.5")


if __name__ == "__main__":
    main()
