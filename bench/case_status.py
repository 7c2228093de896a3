"""Case status: `Patient/$case-status?identifier=<NHS number>` by 32 concurrent clients through gunicorn on
PostgreSQL, with authentication and audit on, as a `hospital` client (the kind that asks at admission; its
policy answers for any NHS number), against a bare Flask endpoint (constant JSON) and raw psycopg runs of
the server's statements (reading a stored answer; reading what an answer is made from), measured in
alternating rounds of the same run, each FHIR round with a token fresh from the token endpoint. Before
that, one client in-process as the same hospital caller: the cost of a lookup that makes its answer against
one that finds it stored.

The database: a synthetic population (loaders.synth, loaded through the extract loaders), stratified, with
case managers who enrol the top of the case-finding list; lookups cycle through NHS numbers of enrolled and
not enrolled patients.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import requests

from common import (
    ODS,
    BenchClient,
    Tokens,
    gunicorn,
    median,
    refresh_statistics,
    register_client,
    scratch_database,
    server_version,
    wrk,
)
from synthpop import load_population

NHS = "https://fhir.nhs.uk/Id/nhs-number"
HOSPITAL = f"{ODS}|RX999"  # the synthetic area's acute trust
HOSPITAL_SCOPE = "system/Patient.rs system/Encounter.rs system/CarePlan.rs system/CareTeam.rs system/Condition.rs"
B = "https://sharedcare.example.org/fhir"
LUA = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""


def caller_of(client: BenchClient) -> object:
    """The Caller the server makes of this client's bearer token (for the in-process timings)."""
    from server.security.context import Caller
    from server.security.scopes import ScopeSet

    return Caller(subject=client.client_id, scopes=ScopeSet.of(client.scope), organization=client.organization,
                  kind=client.kind)


def prepare(database_url: str, patients: int, managers: int, enrol: int, folder: Path, load: bool,
            client: BenchClient) -> list[str]:
    """Load (unless the database is loaded already), stratify and enrol; returns the NHS numbers to look up
    (enrolled ones first)."""
    from server.api.model import FhirRequest
    from server.app import create_app
    from server.care.service import care_of
    from server.config import Settings
    from server.security.context import Caller

    started = time.perf_counter()
    if load:
        app = load_population(database_url, patients, folder, seed=7)
    else:
        app = create_app(Settings.from_env({}, database_url=database_url))
    care = care_of(app.extensions["sharedcare"].services)
    summary = care.runs.run(care.today())  # type: ignore[union-attr]
    api = app.extensions["sharedcare"]

    def call(method: str, path: str, body: object = None, **params: str) -> dict:
        response = api.handle(FhirRequest(method=method, path=path, body=body, params=list(params.items())),
                              Caller.system("bench"))
        return json.loads(response.body) if isinstance(response.body, str) else response.body

    org = call("POST", "Organization", {"resourceType": "Organization", "name": "Community services"})
    roles = []
    for index in range(managers):
        person = call("POST", "Practitioner", {"resourceType": "Practitioner",
                                               "name": [{"family": f"Manager{index}", "given": ["Case"]}]})
        role = call("POST", "PractitionerRole", {
            "resourceType": "PractitionerRole", "active": True,
            "practitioner": {"reference": f"Practitioner/{person['id']}"},
            "organization": {"reference": f"Organization/{org['id']}"},
            "code": [{"coding": [{"system": f"{B}/CodeSystem/care-role", "code": "community-matron"}]}],
            "telecom": [{"system": "phone", "value": f"01632 96{index:04d}"}]})
        roles.append(f"PractitionerRole/{role['id']}")
    found = call("GET", "$case-finding", capacity=str(enrol))
    enrolled = []
    for index, entry in enumerate(found.get("entry", [])):
        patient = entry["item"]["reference"]
        call("POST", f"{patient}/$enrol", {"resourceType": "Parameters", "parameter": [
            {"name": "template", "valueCode": "rutland" if index % 2 else "havering"},
            {"name": "careManager", "valueReference": {"reference": roles[index % len(roles)]}},
            {"name": "override", "valueBoolean": True}]})
        enrolled.append(entry["item"]["display"].rsplit("NHS ", 1)[1].rstrip(")"))
    if not enrolled:  # a kept database, enrolled by an earlier run: look its case-managed people up
        episodes = call("GET", "EpisodeOfCare", _count=str(enrol), status="active",
                        type=f"{B}/CodeSystem/care-programme|", _include="EpisodeOfCare:patient")
        people = [e["resource"] for e in episodes.get("entry", []) if e["resource"]["resourceType"] == "Patient"]
        enrolled = [i["value"] for person in people for i in person.get("identifier", []) if i["system"] == NHS]
    others = []
    bundle = call("GET", "Patient", _count="2000", _elements="identifier")
    for entry in bundle.get("entry", []):
        for identifier in entry["resource"].get("identifier", []):
            if identifier["system"] == NHS and identifier["value"] not in enrolled:
                others.append(identifier["value"])
    print(f"  prepared in {time.perf_counter() - started:.0f} s: {summary.patients} patients, "
          f"{len(enrolled)} enrolled with {managers} case managers")
    random.Random(3).shuffle(others)
    numbers = enrolled + others[:len(enrolled)]
    made_and_stored(app, numbers, client)
    app.extensions["sharedcare"].services.database.dispose()
    return numbers


def made_and_stored(app: object, numbers: list[str], client: BenchClient) -> None:
    """Per-lookup time in-process, one client (the hospital's caller): answers made (no stored ones), then
    found stored."""
    from sqlalchemy import delete

    from server.api.model import FhirRequest
    from server.store.db import transaction
    from server.store.schema import case_status

    api = app.extensions["sharedcare"]  # type: ignore[attr-defined]
    with transaction(api.services.database, writing=True) as connection:
        connection.execute(delete(case_status))
    timings = {}
    for label in ("made", "stored"):
        started = time.perf_counter()
        for number in numbers:
            request = FhirRequest(method="GET", path="Patient/$case-status", params=[("identifier", f"{NHS}|{number}")])
            assert api.handle(request, caller_of(client)).status == 200
        timings[label] = (time.perf_counter() - started) / len(numbers) * 1000
    print(f"  in-process, 1 client, {len(numbers)} lookups: answer made {timings['made']:.2f} ms, "
          f"stored answer {timings['stored']:.2f} ms (x{timings['made'] / timings['stored']:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--managers", type=int, default=8)
    parser.add_argument("--enrol", type=int, default=300)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", help="a database already loaded with a synthetic population")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    args = parser.parse_args()
    here = str(Path(__file__).parent)
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        url = args.database or stack.enter_context(scratch_database("casestatus", keep=args.keep))
        if args.database:  # a kept database: brought to this tree's schema, as `sharedcare db upgrade` would
            from server.store.migrate import upgrade

            upgrade(url)
        if args.keep and not args.database:
            print(f"  kept: {url}")
        client = register_client(url, "hospital", HOSPITAL, HOSPITAL_SCOPE)
        numbers = prepare(url, args.patients, args.managers, args.enrol, Path(scratch) / "synth", not args.database,
                          client)
        refresh_statistics(url)  # as autovacuum would in service (it is off on the benchmark host)
        paths = [f"/fhir/Patient/$case-status?identifier={quote(NHS + '|' + n, safe='')}" for n in numbers]
        script = Path(scratch) / "status.lua"
        script.write_text(LUA % ", ".join(json.dumps(p) for p in paths))
        bare = stack.enter_context(gunicorn("bare_app:create_app()", {}, ["--pythonpath", here]))
        server = stack.enter_context(gunicorn("server.app:create_app()", {"DATABASE_URL": url}))
        tokens = Tokens(server, client)
        raw_env = {"RAW_DATABASE_URL": url.replace("+psycopg", "")}
        raw, raw_data = (stack.enter_context(gunicorn("raw_case_status_app:create_app()",
                                                      {**raw_env, "RAW_STATEMENT": mode}, ["--pythonpath", here]))
                         for mode in ("stored", "data"))
        check = requests.get(server + paths[0], headers=tokens.header(), timeout=10)
        assert check.status_code == 200 and '"caseManaged","valueBoolean":true' in check.text.replace(" ", ""), \
            check.text[:300]
        assert requests.get(raw + paths[0], timeout=10).status_code == 200
        assert requests.get(raw_data + paths[0], timeout=10).status_code == 200
        targets: dict[str, tuple[str, Path | None, Tokens | None]] = {
            "bare Flask constant JSON": (bare + "/fhir/Patient/example", None, None),
            "$case-status, PostgreSQL": (server + "/fhir/metadata", script, tokens),
            "raw SQL, stored answer": (raw + "/health", script, None),
            "raw SQL, answer's data": (raw_data + "/health", script, None),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for target, lua, bearer in targets.values():
            wrk(target, args.clients, 2, lua, bearer.header(fresh=True) if bearer else None)
        for _round in range(args.rounds):
            for name, (target, lua, bearer) in targets.items():
                runs[name].append(wrk(target, args.clients, args.seconds, lua,
                                      bearer.header(fresh=True) if bearer else None))
    results = {name: {key: median([r[key] for r in found]) for key in found[0]} for name, found in runs.items()}
    bare_rate = results["bare Flask constant JSON"]["rps"]
    print(f"case status: {len(numbers)} NHS numbers ({len(numbers) // 2} case-managed), {args.clients} "
          f"connections, {args.rounds} alternating rounds of {args.seconds} s, medians; as a hospital client "
          f"(bearer token, audit on); server at {server_version()}")
    print("  gunicorn -c gunicorn.conf.py (the same for every server)")
    for name, figures in results.items():
        print(f"    {name:30s} {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms"
              f"  non-2xx {figures['errors']:.0f}  ratio to bare {figures['rps'] / bare_rate:5.2f}")
    print("  target: $case-status ratio to bare >= 0.5")


if __name__ == "__main__":
    main()
