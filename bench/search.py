"""Search at scale: the Synthea sets replicated to 10 thousand, 100 thousand and 1 million resources in
PostgreSQL, a fixed query set run at each size through gunicorn, p50 and p95 latency printed.

The data grows in place (10k, then up to 100k, then up to 1M), so each size is measured on the same
database. `--sizes` picks others (e.g. `--sizes 10000,100000` for a quicker run).
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

from common import gunicorn, percentile, refresh_statistics, scratch_database
from replicate import Source, read_sets, replicated

HEADERS = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
SAMPLES = 40


class Loader:
    """Posts bundles with concurrent clients and remembers the patients it created."""

    def __init__(self, base: str, clients: int) -> None:
        self.base = base
        self.clients = clients
        self.local = threading.local()
        self.patients: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def session(self) -> requests.Session:
        if getattr(self.local, "session", None) is None:
            self.local.session = requests.Session()
        return self.local.session

    def post(self, bundle: dict[str, Any]) -> None:
        response = self.session().post(f"{self.base}/fhir", json=bundle, headers=HEADERS, timeout=600)
        if response.status_code != 200:
            raise SystemExit(f"load failed: {response.status_code} {response.text[:500]}")
        for entry, answer in zip(bundle["entry"], response.json()["entry"], strict=True):
            resource = entry["resource"]
            if resource["resourceType"] == "Patient" and resource.get("identifier"):
                identifier = resource["identifier"][0]
                patient_id = answer["response"]["location"].split("/")[1]
                with self.lock:
                    self.patients.append((patient_id, identifier["system"], identifier["value"]))

    def load(self, bundles) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(self.clients) as pool:
            list(pool.map(self.post, bundles))
        return time.perf_counter() - start


def count(base: str, query: str) -> tuple[int, float]:
    start = time.perf_counter()
    body = requests.get(f"{base}/fhir/{query}", timeout=600).json()
    return body["total"], time.perf_counter() - start


def timed(session: requests.Session, url: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    response = session.get(url, timeout=600)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def query_set(base: str, patients: list[tuple[str, str, str]], rng: random.Random) -> dict[str, list[float]]:
    """Latencies (seconds) per query, over SAMPLES random patients or values."""
    session = requests.Session()
    fhir = f"{base}/fhir"
    results: dict[str, list[float]] = {}

    def run(name: str, url: str) -> dict[str, Any]:
        elapsed, body = timed(session, url)
        results.setdefault(name, []).append(elapsed)
        return body

    codes = ["http://snomed.info/sct|444814009", "http://snomed.info/sct|195662009", "http://snomed.info/sct|10509002",
             "http://snomed.info/sct|15777000", "http://snomed.info/sct|271737000"]
    for _sample in range(SAMPLES):
        patient_id, system, value = rng.choice(patients)
        run("patient: active CarePlans + CareTeam + addressed Conditions",
            f"{fhir}/CarePlan?subject=Patient/{patient_id}&status=active"
            "&_include=CarePlan:care-team&_include=CarePlan:condition")
        run("patient: Encounter?patient.identifier=&date=ge",
            f"{fhir}/Encounter?patient.identifier={system}|{value}&date=ge2015-01-01")
        run("patient: Observation?patient=&_sort=-date", f"{fhir}/Observation?patient={patient_id}&_sort=-date")
        run("patient: Patient/{id}/$everything (first page)", f"{fhir}/Patient/{patient_id}/$everything?_count=50")
        run("population: Observation?code=&value-quantity=gt",
            f"{fhir}/Observation?code=http://loinc.org|8302-2&value-quantity=gt{rng.randint(150, 185)}")
        run("population: Patient?_has:Condition:patient:code=",
            f"{fhir}/Patient?_has:Condition:patient:code={rng.choice(codes)}")
        run("population: Encounter?date=&_sort=-date",
            f"{fhir}/Encounter?date=ge{rng.randint(2015, 2019)}-01-01&_sort=-date")
    for code in codes[:3]:
        url = f"{fhir}/Condition?code={code}&_count=50"
        pages = 0
        while url:
            body = run("population: Condition?code=&_count=50, every page", url)
            pages += 1
            url = next((link["url"] for link in body["link"] if link["relation"] == "next"), "")
            if url.startswith("http://localhost"):
                url = base + url[len("http://localhost"):]
    return results


def report(size: int, actual: int, results: dict[str, list[float]], previous: dict[str, float] | None
           ) -> dict[str, float]:
    print(f"\n{actual:,} resources (target {size:,})")
    print(f"  {'query':58s} {'n':>4s} {'p50 ms':>8s} {'p95 ms':>8s}  growth")
    medians = {}
    for name, values in results.items():
        p50, p95 = percentile(values, 0.5) * 1000, percentile(values, 0.95) * 1000
        medians[name] = p50
        growth = f"{p50 / previous[name]:.2f}x" if previous and previous.get(name) else ""
        print(f"  {name:58s} {len(values):4d} {p50:8.1f} {p95:8.1f}  {growth}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    source: Source = read_sets(args.shared)
    rng = random.Random(42)
    with scratch_database("search", keep=args.keep) as url, \
            gunicorn("server.app:create_app()", {"DATABASE_URL": url}) as base:
        loader = Loader(base, args.clients)
        for bundle in source.shared:
            loader.post(bundle)
        loaded = 0
        previous = None
        for size in sizes:
            seconds = loader.load(replicated(source, size, loaded))
            analyze_started = time.perf_counter()
            refresh_statistics(url)
            print(f"\nVACUUM ANALYZE: {time.perf_counter() - analyze_started:.0f} s", flush=True)
            actual, _ = count(base, "?_summary=count&_total=accurate")
            print(f"\nloaded up to {actual:,} resources in {seconds:.0f} s "
                  f"({(actual - loaded) / max(seconds, 1e-9):.0f} resources/s)", flush=True)
            loaded = size
            results = query_set(base, loader.patients, rng)
            medians = report(size, actual, results, previous)
            total, elapsed = count(base, "Observation?_total=accurate&_count=0")
            print(f"  _total=accurate over Observation ({total:,} resources): {elapsed * 1000:.0f} ms", flush=True)
            previous = medians
        if args.keep:
            print(f"\ndatabase kept: {url}")


if __name__ == "__main__":
    main()
