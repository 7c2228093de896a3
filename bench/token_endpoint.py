"""Token endpoint: SMART Backend Services token requests over HTTP to gunicorn on PostgreSQL, each with a
fresh client assertion (its own jti, never replayed), by an ES384 client and an RS384 client.

The assertions are signed before each round, in this process, and timed there: the client's signing cost
is reported on its own and never competes with the server during a round. wrk then posts each signed form
once (the bodies are split between wrk's threads), in alternating rounds with a bare Flask endpoint
returning a constant JSON body under the same gunicorn configuration; medians are reported. Every token
request is also audited by the server.

In-process, on the same database, the parts of the server's work: checking an assertion's signature, issuing
(signing) an access token, and the bearer check every FHIR request makes - for a token already seen by the
process (cached) and on its first use (signature verified) - against an in-process read by id as the same
client with its audit record (the read of read.py without HTTP).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

import requests

from common import (
    INTEGRATION,
    BenchClient,
    Tokens,
    gunicorn,
    median,
    register_client,
    scratch_database,
    server_version,
    session_as,
    wrk,
)

ALGORITHMS = ("ES384", "RS384")
SCOPE = "system/Patient.rs system/Observation.rs"
LUA = """
-- each thread posts its own share of the signed token requests (one per line), each once
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local threads = tonumber(args[2])
  bodies = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i %% threads == id then bodies[#bodies + 1] = line end
    i = i + 1
  end
  n = 0
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  n = n + 1
  return wrk.format("POST", "%s", nil, bodies[math.min(n, #bodies)])
end
"""


def sign_forms(client: BenchClient, token_url: str, count: int) -> tuple[list[str], float]:
    """`count` token request bodies, each with a new assertion; and the signing time per assertion (us)."""
    from server.security.tokenclient import sign_assertion
    from server.security.tokens import ASSERTION_TYPE, GRANT_TYPE

    started = time.perf_counter()
    assertions = [sign_assertion(client.client_id, client.key, token_url) for _ in range(count)]
    per = (time.perf_counter() - started) / count * 1e6
    bodies = [urlencode({"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE,
                         "client_assertion": assertion, "scope": SCOPE}) for assertion in assertions]
    return bodies, per


def token_round(base: str, client: BenchClient, count: int, connections: int, threads: int, seconds: int,
                folder: Path) -> tuple[dict[str, float], float]:
    """One wrk round of `count` fresh token requests at most; (wrk figures, signing us per assertion)."""
    token_url = f"{base}/fhir/auth/token"
    bodies, per = sign_forms(client, token_url, count)
    forms = folder / f"forms-{client.alg}.txt"
    forms.write_text("\n".join(bodies) + "\n")
    script = folder / "token.lua"
    script.write_text(LUA % "/fhir/auth/token")
    found = wrk(token_url, connections, seconds, script, script_args=[str(forms), str(threads)], threads=threads)
    if found["requests"] > count:
        print(f"  warning: {found['requests']:.0f} requests for {count} signed forms (the rest replayed, refused)")
    return found, per


def in_process(url: str, clients: dict[str, BenchClient], base: str, rounds: int = 5) -> None:
    """The server's parts of a token request and of a bearer-authenticated read, timed in-process."""
    from server.api.model import FhirRequest
    from server.app import create_app
    from server.config import Settings
    from server.security.context import Caller
    from server.security.jwts import read, verify
    from server.security.keys import public_of
    from server.security.tokenclient import sign_assertion

    app = create_app(Settings.from_env({}, database_url=url, log_level="WARNING"))
    auth = app.extensions["sharedcare.auth"]
    api = app.extensions["sharedcare"]
    fhir_base = f"{base}/fhir"
    token_url = f"{fhir_base}/auth/token"

    def best(run, count: int) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) / count * 1e6)
        return min(times)

    def checks(public: object, assertions: list[object]) -> None:
        for assertion in assertions:
            verify(assertion, public)  # type: ignore[arg-type]

    print("  in-process, min of 5 runs (us):")
    for alg, client in clients.items():
        public = public_of(client.key)
        assertions = [read(sign_assertion(client.client_id, client.key, token_url), 8192) for _ in range(200)]
        checked = best(lambda public=public, assertions=assertions: checks(public, assertions), 200)
        print(f"    assertion signature check, {alg}:          {checked:8.0f}")
    registered = auth.registry.get(clients["ES384"].client_id)
    issued = best(lambda: [auth.tokens.issue(registered, SCOPE, fhir_base) for _ in range(200)], 200)
    print(f"    access token issued (signed, {auth.keys.alg}):        {issued:8.0f}")
    tokens = [auth.tokens.issue(registered, SCOPE, fhir_base)[0] for _ in range(200 * rounds)]
    batches = iter([tokens[i * 200:(i + 1) * 200] for i in range(rounds)])

    def first_uses() -> None:
        for token in next(batches):
            auth.authenticate(f"Bearer {token}", fhir_base)

    first = best(first_uses, 200)
    header = f"Bearer {tokens[0]}"
    cached = best(lambda: [auth.authenticate(header, fhir_base) for _ in range(2000)], 2000)
    print(f"    bearer check, token's first use in a process:{first:8.0f}")
    print(f"    bearer check, token seen before (cached):    {cached:8.0f}")
    caller = auth.authenticate(header, fhir_base)
    patient = {"resourceType": "Patient", "gender": "female"}
    created = api.handle(FhirRequest(method="POST", path="Patient", body=patient, base_url=fhir_base),
                         Caller.system("bench"))  # set-up: the read below is the client's
    patient_id = created.stored.id if created.stored else created.headers["Location"].split("/")[-3]
    request = FhirRequest(method="GET", path=f"Patient/{patient_id}", base_url=fhir_base)
    assert api.handle(request, caller).status == 200
    read_cost = best(lambda: [api.handle(request, caller) for _ in range(1000)], 1000)
    print(f"    read by id with its audit record (no HTTP):  {read_cost:8.0f}  "
          f"(the cached bearer check is {cached / read_cost * 100:.0f} % of it)")
    app.extensions["sharedcare"].services.database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    here = str(Path(__file__).parent)
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        folder = Path(scratch)
        url = stack.enter_context(scratch_database("token"))
        kind, organization, _scope = INTEGRATION
        clients = {alg: register_client(url, kind, organization, SCOPE, alg) for alg in ALGORITHMS}
        bare = stack.enter_context(gunicorn("bare_app:create_app()", {}, ["--pythonpath", here]))
        base = stack.enter_context(gunicorn("server.app:create_app()", {"DATABASE_URL": url}))
        for client in clients.values():  # discovery and one token each, as a client starts
            tokens = Tokens(base, client)
            assert session_as(tokens).get(f"{base}/fhir/Patient?_count=1", timeout=30).status_code == 200
        assert requests.get(f"{base}/fhir/.well-known/smart-configuration", timeout=30).json()["token_endpoint"] \
            == f"{base}/fhir/auth/token"
        # warm-up, also to size the rounds: enough signed forms for half as many again as the warm-up rate
        wrk(bare + "/fhir/Patient/example", args.clients, 2, threads=args.threads)
        sizes = {}
        for alg, client in clients.items():
            found, _per = token_round(base, client, 3000, args.clients, args.threads, 2, folder)
            sizes[alg] = math.ceil(found["rps"] * args.seconds * 1.5) + 500
        runs: dict[str, list[dict[str, float]]] = {"bare Flask constant JSON": [],
                                                   **{f"token endpoint, {alg} client": [] for alg in ALGORITHMS}}
        signing: dict[str, list[float]] = {alg: [] for alg in ALGORITHMS}
        for _round in range(args.rounds):
            runs["bare Flask constant JSON"].append(
                wrk(bare + "/fhir/Patient/example", args.clients, args.seconds, threads=args.threads))
            for alg, client in clients.items():
                found, per = token_round(base, client, sizes[alg], args.clients, args.threads, args.seconds, folder)
                runs[f"token endpoint, {alg} client"].append(found)
                signing[alg].append(per)
        results = {name: {key: median([r[key] for r in found]) for key in found[0]} for name, found in runs.items()}
        print(f"token: client_credentials grants with private_key_jwt, each request a new assertion (own jti), "
              f"{args.clients} connections, {args.rounds} alternating rounds of {args.seconds} s, medians; "
              f"gunicorn + PostgreSQL; server at {server_version()}")
        print("  client side, one core: signing an assertion")
        for alg in ALGORITHMS:
            per = median(signing[alg])
            print(f"    {alg}  {per:8.0f} us per assertion  ({1e6 / per:6.0f} assertions/s)")
        print("  server, over HTTP (gunicorn -c gunicorn.conf.py, the same for both servers)")
        bare_rate = results["bare Flask constant JSON"]["rps"]
        for name, figures in results.items():
            print(f"    {name:30s} {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 "
                  f"{figures['p99']:7.2f} ms  non-2xx {figures['errors']:.0f}  ratio to bare "
                  f"{figures['rps'] / bare_rate:5.2f}")
        in_process(url, clients, base)


if __name__ == "__main__":
    main()
