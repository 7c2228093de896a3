"""The search benchmark's queries in-process, as a gp client and as the integration client: the API called
directly (no HTTP, no gunicorn), on a database `search.py --keep` loaded, each query run by both clients in
turn (the order alternating by sample); prints the median milliseconds of each and their ratio.

Without HTTP's fixed cost in both figures, what the reach adds to a search shows plainly; with
`--statements` the medians of PostgreSQL's own statement durations are printed beside them (auto_explain,
analysis off), which tells the database's part from the Python side's.

    ../.venv/bin/python search_inprocess.py --database postgresql+psycopg://postgres@127.0.0.1:5432/sharedcare_search_x
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from explain import plans_of
from search import GP_PRACTICE

CODES = ("http://snomed.info/sct|444814009", "http://snomed.info/sct|195662009", "http://snomed.info/sct|10509002")
SETTINGS = ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = off",
            "SET auto_explain.log_nested_statements = off", "SET client_min_messages = log")


def queries(patient: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """search.py's query set for one patient of the gp client's practice (population queries drawn by rng)."""
    identifier = patient["identifier"][0]
    return {
        "careplans": f"CarePlan?subject=Patient/{patient['id']}&status=active&_include=CarePlan:care-team"
                     "&_include=CarePlan:condition",
        "enc chain": f"Encounter?patient.identifier={identifier['system']}|{identifier['value']}&date=ge2015-01-01",
        "obs sort": f"Observation?patient={patient['id']}&_sort=-date",
        "everything": f"Patient/{patient['id']}/$everything?_count=50",
        "obs value": f"Observation?code=http://loinc.org|8302-2&value-quantity=gt{rng.randint(150, 185)}",
        "_has": f"Patient?_has:Condition:patient:code={rng.choice(CODES)}",
        "enc date": f"Encounter?date=ge{rng.randint(2015, 2019)}-01-01&_sort=-date",
        "cond p1": f"Condition?code={CODES[0]}&_count=50",
    }


def duration_of(plan: str) -> float:
    """The milliseconds an auto_explain notice reports (0 for any other notice)."""
    return float(plan.split("duration: ", 1)[1].split(" ms", 1)[0]) if "duration: " in plan else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="a PostgreSQL URL (a database search.py kept)")
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--statements", action="store_true", help="also PostgreSQL's statement durations")
    args = parser.parse_args()

    from server.api.model import FhirRequest
    from server.app import create_app
    from server.config import Settings
    from server.security.clients import organization_token
    from server.security.context import Caller
    from server.security.scopes import ScopeSet

    app = create_app(Settings.from_env({}, database_url=args.database, log_level="WARNING"))
    api = app.extensions["sharedcare"]
    callers = {
        "integration": Caller(subject="bench-integration", scopes=ScopeSet.of("system/*.cruds"),
                              organization=organization_token("X26"), kind="integration"),
        "gp": Caller(subject="bench-gp", scopes=ScopeSet.of("system/*.rs"),
                     organization=organization_token(GP_PRACTICE), kind="gp"),
    }

    def get(query: str, client: str) -> dict[str, Any]:
        parts = urlsplit(query)
        request = FhirRequest(method="GET", path=parts.path.lstrip("/"),
                              params=parse_qsl(parts.query, keep_blank_values=True), base_url="http://localhost/fhir")
        response = api.handle(request, callers[client])
        if response.status != 200:
            raise SystemExit(f"{query} as {client}: {response.status} {str(response.body)[:300]}")
        return response.body if isinstance(response.body, dict) else orjson.loads(response.body)

    practice = get(f"Organization?identifier={GP_PRACTICE}", "integration")["entry"][0]["resource"]["id"]
    patients = [e["resource"] for e in get(f"Patient?general-practitioner=Organization/{practice}&_count=200",
                                           "integration")["entry"]]
    durations = plans_of(api.services.database, SETTINGS) if args.statements else []
    rng = random.Random(1)
    timed: dict[tuple[str, str], list[tuple[float, float]]] = {}
    def run(name: str, query: str, client: str) -> None:
        durations.clear()
        started = time.perf_counter()
        get(query, client)
        elapsed = (time.perf_counter() - started) * 1000
        timed.setdefault((name, client), []).append((elapsed, sum(duration_of(p) for p in durations)))

    for sample in range(args.samples):
        for name, query in queries(rng.choice(patients), rng).items():
            order = ("integration", "gp") if sample % 2 == 0 else ("gp", "integration")
            for client in order:
                run(name, query, client)
    names = list(queries(patients[0], rng))
    print(f"in-process search, {args.samples} samples a query, medians in ms; gp client of {GP_PRACTICE}")
    print(f"  {'query':12s} {'int':>7s} {'gp':>7s} {'gp/int':>7s}" + ("   int sql  gp sql" if args.statements else ""))
    for name in names:
        integration, gp = timed[(name, "integration")], timed[(name, "gp")]
        i, g = statistics.median(x[0] for x in integration), statistics.median(x[0] for x in gp)
        line = f"  {name:12s} {i:7.2f} {g:7.2f} {g / i:6.2f}x"
        if args.statements:
            line += f"  {statistics.median(x[1] for x in integration):8.2f} {statistics.median(x[1] for x in gp):7.2f}"
        print(line)
    api.services.database.dispose()


if __name__ == "__main__":
    main()
