"""Search at scale: the Synthea sets replicated to 10 thousand, 100 thousand and 1 million resources in
PostgreSQL, a fixed query set run at each size through gunicorn, p50 and p95 latency printed, with
authentication and audit on, as two clients in the same run: an `integration` client (the whole record)
and a `gp` client (its practice's reach in every query).

The replicated Patients are registered at 10 practices in turn (Organizations with ODS codes,
generalPractitioner references), so each holds a tenth of the population. Patient-level queries pick
patients of the gp client's practice, the same for both clients; population queries are the same URLs
for both. Each query is run by both clients in turn (the order
alternating by sample), each with its own bearer token, renewed before it expires.

The data grows in place (10k, then up to 100k, then up to 1M), so each size is measured on the same
database. `--sizes` picks others (e.g. `--sizes 10000,100000` for a quicker run); `--keep` keeps the
database, to study a query afterwards with explain.py.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from common import (
    INTEGRATION,
    ODS,
    Tokens,
    client_tokens,
    gunicorn,
    percentile,
    practice_organizations,
    refresh_statistics,
    registered_at,
    scratch_database,
    server_version,
    session_as,
)
from replicate import Source, read_sets, replicated

HEADERS = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
SAMPLES = 40
PRACTICES = tuple(f"B82{n:03d}" for n in range(1, 11))
GP_PRACTICE = PRACTICES[0]
GP_SCOPE = "system/*.rs"
CLIENTS = ("integration", "gp")


class Loader:
    """Posts bundles with concurrent clients (as the integration client) and remembers the patients it
    created, with their practice."""

    def __init__(self, tokens: Tokens, clients: int) -> None:
        self.tokens = tokens
        self.clients = clients
        self.local = threading.local()
        self.patients: list[tuple[str, str, str, str]] = []  # (id, identifier system, value, practice)
        self.lock = threading.Lock()
        self.registered = 0  # patient bundles given a practice so far

    def session(self) -> requests.Session:
        if getattr(self.local, "session", None) is None:
            self.local.session = session_as(self.tokens)
        return self.local.session

    def practices(self, bundles) -> Any:
        """The bundles, each patient registered at the next practice in turn (in the order they are made)."""
        for bundle in bundles:
            yield registered_at(bundle, PRACTICES[self.registered % len(PRACTICES)])
            self.registered += 1

    def post(self, bundle: dict[str, Any]) -> None:
        practice = next((e["resource"]["generalPractitioner"][0]["reference"].rpartition("|")[2]
                         for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
                         and e["resource"].get("generalPractitioner")), "")
        response = self.session().post(self.tokens.fhir_base, json=bundle, headers=HEADERS, timeout=600)
        if response.status_code != 200:
            raise SystemExit(f"load failed: {response.status_code} {response.text[:500]}")
        for entry, answer in zip(bundle["entry"], response.json()["entry"], strict=True):
            resource = entry["resource"]
            if resource["resourceType"] == "Patient" and resource.get("identifier"):
                identifier = resource["identifier"][0]
                patient_id = answer["response"]["location"].split("/")[1]
                with self.lock:
                    self.patients.append((patient_id, identifier["system"], identifier["value"], practice))

    def load(self, bundles) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(self.clients) as pool:
            list(pool.map(self.post, self.practices(bundles)))
        return time.perf_counter() - start


def count(session: requests.Session, base: str, query: str) -> tuple[int, float]:
    start = time.perf_counter()
    response = session.get(f"{base}/fhir/{query}", timeout=600)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{query}: {response.status_code} {response.text[:300]}")
    return response.json()["total"], elapsed


def timed(session: requests.Session, url: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    response = session.get(url, timeout=600)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def query_set(base: str, patients: list[tuple[str, str, str, str]], rng: random.Random,
              sessions: dict[str, requests.Session]) -> dict[str, dict[str, list[float]]]:
    """Latencies (seconds) per client and query, over SAMPLES random patients (of the gp's practice) or
    values; each query run by both clients, in turn."""
    fhir = f"{base}/fhir"
    results: dict[str, dict[str, list[float]]] = {name: {} for name in sessions}
    ours = [p for p in patients if p[3] == GP_PRACTICE]

    def run(name: str, url: str, order: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        bodies = {}
        for client in order:
            elapsed, bodies[client] = timed(sessions[client], url)
            results[client].setdefault(name, []).append(elapsed)
        return bodies

    codes = ["http://snomed.info/sct|444814009", "http://snomed.info/sct|195662009", "http://snomed.info/sct|10509002",
             "http://snomed.info/sct|15777000", "http://snomed.info/sct|271737000"]
    for sample in range(SAMPLES):
        order = CLIENTS if sample % 2 == 0 else tuple(reversed(CLIENTS))
        patient_id, system, value, _practice = rng.choice(ours)
        run("patient: active CarePlans + CareTeam + addressed Conditions",
            f"{fhir}/CarePlan?subject=Patient/{patient_id}&status=active"
            "&_include=CarePlan:care-team&_include=CarePlan:condition", order)
        run("patient: Encounter?patient.identifier=&date=ge",
            f"{fhir}/Encounter?patient.identifier={system}|{value}&date=ge2015-01-01", order)
        run("patient: Observation?patient=&_sort=-date", f"{fhir}/Observation?patient={patient_id}&_sort=-date",
            order)
        run("patient: Patient/{id}/$everything (first page)", f"{fhir}/Patient/{patient_id}/$everything?_count=50",
            order)
        run("population: Observation?code=&value-quantity=gt",
            f"{fhir}/Observation?code=http://loinc.org|8302-2&value-quantity=gt{rng.randint(150, 185)}", order)
        run("population: Patient?_has:Condition:patient:code=",
            f"{fhir}/Patient?_has:Condition:patient:code={rng.choice(codes)}", order)
        run("population: Encounter?date=&_sort=-date",
            f"{fhir}/Encounter?date=ge{rng.randint(2015, 2019)}-01-01&_sort=-date", order)
    for client in CLIENTS:
        for code in codes[:3]:
            url = f"{fhir}/Condition?code={code}&_count=50"
            while url:
                body = run("population: Condition?code=&_count=50, every page", url, (client,))[client]
                url = next((link["url"] for link in body["link"] if link["relation"] == "next"), "")
                if url.startswith("http://localhost"):
                    url = base + url[len("http://localhost"):]
    return results


def report(size: int, actual: int, results: dict[str, dict[str, list[float]]],
           previous: dict[str, dict[str, float]] | None) -> dict[str, dict[str, float]]:
    print(f"\n{actual:,} resources (target {size:,}); p50 and p95 in ms; integration client (int) and gp client "
          f"(gp, practice {GP_PRACTICE}); growth is p50 over p50 at the previous size")
    print(f"  {'query':58s} {'n int/gp':>9s} {'int p50':>8s} {'int p95':>8s} {'gp p50':>8s} {'gp p95':>8s} "
          f"{'gp/int p50':>10s} {'gp/int p95':>10s}  growth int, gp")
    medians: dict[str, dict[str, float]] = {client: {} for client in results}
    for name in results["integration"]:
        figures = {}
        for client in CLIENTS:
            values = results[client].get(name, [])
            figures[client] = (percentile(values, 0.5) * 1000, percentile(values, 0.95) * 1000, len(values))
            medians[client][name] = figures[client][0]
        (i50, i95, i_n), (g50, g95, g_n) = figures["integration"], figures["gp"]
        growth = ""
        if previous:
            growth = ", ".join(f"{figures[c][0] / previous[c][name]:.2f}x" if previous[c].get(name) else "-"
                               for c in CLIENTS)
        print(f"  {name:58s} {i_n:4d}/{g_n:<4d} {i50:8.1f} {i95:8.1f} {g50:8.1f} {g95:8.1f} {g50 / i50:9.2f}x "
              f"{g95 / i95:9.2f}x  {growth}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--reuse", default="",
                        help="Run the query set once on a database an earlier --keep run loaded (no loading).")
    args = parser.parse_args()
    if args.reuse:
        rerun(args.reuse)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    source: Source = read_sets(args.shared)
    rng = random.Random(42)
    print(f"search: server at {server_version()}; bearer tokens and audit on", flush=True)
    with scratch_database("search", keep=args.keep) as url, \
            gunicorn("server.app:create_app()", {"DATABASE_URL": url}) as base:
        if args.keep:
            print(f"database (kept): {url}", flush=True)
        integration = client_tokens(url, base, *INTEGRATION)
        gp = client_tokens(url, base, "gp", f"{ODS}|{GP_PRACTICE}", GP_SCOPE)
        sessions = {"integration": session_as(integration), "gp": session_as(gp)}
        loader = Loader(integration, args.clients)
        loader.session().post(integration.fhir_base, json=practice_organizations(PRACTICES), headers=HEADERS,
                              timeout=60).raise_for_status()
        for bundle in source.shared:
            loader.post(bundle)
        loaded = 0
        previous = None
        for size in sizes:
            seconds = loader.load(replicated(source, size, loaded))
            analyze_started = time.perf_counter()
            refresh_statistics(url)
            print(f"\nVACUUM ANALYZE: {time.perf_counter() - analyze_started:.0f} s", flush=True)
            actual, _ = count(sessions["integration"], base, "?_summary=count&_total=accurate")
            ours = sum(1 for p in loader.patients if p[3] == GP_PRACTICE)
            print(f"\nloaded up to {actual:,} resources in {seconds:.0f} s "
                  f"({(actual - loaded) / max(seconds, 1e-9):.0f} resources/s); {len(loader.patients):,} patients, "
                  f"{ours:,} of them at practice {GP_PRACTICE} ({ours / max(len(loader.patients), 1):.0%})",
                  flush=True)
            loaded = size
            results = query_set(base, loader.patients, rng, sessions)
            medians = report(size, actual, results, previous)
            for client in CLIENTS:
                total, elapsed = count(sessions[client], base, "Observation?_total=accurate&_count=0")
                print(f"  _total=accurate over Observation as {client:11s} ({total:,} resources): "
                      f"{elapsed * 1000:.0f} ms", flush=True)
            previous = medians
        print(f"\ntokens requested: integration {integration.requested}, gp {gp.requested}")
        if args.keep:
            print(f"\ndatabase kept: {url}")


def kept_patients(url: str) -> list[tuple[str, str, str, str]]:
    """The gp practice's patients of a kept database, each with an identifier (as the loader noted them)."""
    from sqlalchemy import create_engine, text

    from server.fhir.searchparams import param_key

    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT DISTINCT ON (r.id) r.id, t.system, t.code FROM resources r "
            "JOIN idx_reference g ON g.pk = r.pk AND g.sp = :gp AND g.ttype = 'Organization' "
            "JOIN resources o ON o.type = 'Organization' AND o.id = g.tid "
            "JOIN idx_token p ON p.pk = o.pk AND p.sp = :org AND p.system = :ods AND p.code = :practice "
            "JOIN idx_token t ON t.pk = r.pk AND t.sp = :identifier "
            "WHERE r.type = 'Patient' AND r.deleted = false ORDER BY r.id, t.system, t.code"),
            {"gp": param_key("Patient", "general-practitioner"), "org": param_key("Organization", "identifier"),
             "ods": ODS, "practice": GP_PRACTICE, "identifier": param_key("Patient", "identifier")}).all()
    engine.dispose()
    return [(row[0], row[1], row[2], GP_PRACTICE) for row in rows]


def rerun(url: str) -> None:
    """The query set on a kept database as it stands, both clients registered afresh."""
    rng = random.Random(42)
    print(f"search (query set only, on a kept database): server at {server_version()}; bearer tokens and audit on",
          flush=True)
    with gunicorn("server.app:create_app()", {"DATABASE_URL": url}) as base:
        integration = client_tokens(url, base, *INTEGRATION)
        gp = client_tokens(url, base, "gp", f"{ODS}|{GP_PRACTICE}", GP_SCOPE)
        sessions = {"integration": session_as(integration), "gp": session_as(gp)}
        refresh_statistics(url)
        actual, _ = count(sessions["integration"], base, "?_summary=count&_total=accurate")
        patients = kept_patients(url)
        print(f"\n{actual:,} resources; {len(patients):,} patients at practice {GP_PRACTICE}", flush=True)
        report(actual, actual, query_set(base, patients, rng, sessions), None)
        for client in CLIENTS:
            total, elapsed = count(sessions[client], base, "Observation?_total=accurate&_count=0")
            print(f"  _total=accurate over Observation as {client:11s} ({total:,} resources): "
                  f"{elapsed * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
