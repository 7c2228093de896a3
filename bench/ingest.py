"""Ingest: a Synthea set posted as transactions over HTTP to gunicorn on PostgreSQL by concurrent clients,
with authentication and audit on: the posts are made as an `integration` client (the region's data
service) with a bearer token from the token endpoint, and each transaction writes its audit record.

Prints resources/s and the ratio to the fhir.resources validate-only rate of the same resources on one
core, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from common import (
    INTEGRATION,
    Tokens,
    client_tokens,
    gunicorn,
    scratch_database,
    server_version,
    session_as,
    synthea_bundles,
)

SET = "synthea-v2.4-smart-generated-sample-data.tar.gz"


def validate_only_rate(bundles: list[tuple[str, bytes]]) -> tuple[float, int]:
    from fhir.resources.R4B import get_fhir_model_class

    resources = [entry["resource"] for _name, data in bundles for entry in json.loads(data)["entry"]]
    start = time.perf_counter()
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return len(resources) / (time.perf_counter() - start), len(resources)


def post_all(tokens: Tokens, bundles: list[tuple[str, bytes]], clients: int) -> float:
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    first = [b for b in bundles if "Information" in b[0]]
    rest = [b for b in bundles if "Information" not in b[0]]
    sessions: dict[int, requests.Session] = {}

    def send(item: tuple[str, bytes]) -> None:
        import threading

        session = sessions.setdefault(threading.get_ident(), session_as(tokens))
        response = session.post(tokens.fhir_base, data=item[1], headers=headers, timeout=600)
        if response.status_code != 200:
            raise SystemExit(f"{item[0]}: {response.status_code} {response.text[:300]}")

    start = time.perf_counter()
    for item in first:
        send(item)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, rest))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    bundles = synthea_bundles(args.shared / "data" / "synthea" / SET)
    validate_rate, count = validate_only_rate(bundles)
    with scratch_database("ingest") as url, gunicorn("server.app:create_app()", {"DATABASE_URL": url}) as base:
        tokens = client_tokens(url, base, *INTEGRATION)
        tokens.current()  # the first token before the clock starts (a client holds one before it sends)
        seconds = post_all(tokens, bundles, args.clients)
    rate = count / seconds
    print(f"ingest: {len(bundles)} bundles, {count} resources, {args.clients} clients, gunicorn + PostgreSQL; "
          f"as an integration client (bearer token, audit on); server at {server_version()}")
    print(f"  validate-only (fhir.resources, 1 core): {validate_rate:8.0f} resources/s")
    print(f"  ingest over HTTP:                       {rate:8.0f} resources/s  ({seconds:.1f} s)")
    print(f"  ratio ingest / validate-only:           {rate / validate_rate:8.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
