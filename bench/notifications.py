"""Notifications: a burst of qualifying writes to 100 subscriptions with a local receiver.

gunicorn on a scratch PostgreSQL database, one or more `sharedcare worker` processes, a threaded HTTP
receiver in this process. The same burst of CarePlan creates (as an `integration` client, concurrent
clients, one POST each) is written twice in one run: first with no subscription, then with 100
subscriptions (one per patient, `CarePlan?patient=...`, id-only), so every write of the second burst
qualifies for exactly one subscription. Prints the write rate of each and their ratio (target >= 0.8),
events delivered per second, the latency from the event's recording (its flush in the write's
transaction, just before the commit) to its receipt, p50 and p99 (target p99 < 2 s), and how many
events were lost (target 0) or received twice.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from common import (
    BIN,
    INTEGRATION,
    PROJECT,
    Tokens,
    client_tokens,
    gunicorn,
    percentile,
    scratch_database,
    server_version,
    session_as,
)

TOPIC = "https://sharedcare.example.org/fhir/SubscriptionTopic/care-plan-changed"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
ENV = {"SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS": "true", "SUBSCRIPTION_ALLOW_HTTP": "true"}


class Received:
    """What the receiver got: per subscription, the event numbers with their latency."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, list[tuple[int, float]]] = {}
        self.handshakes: set[str] = set()
        self.last = 0.0

    def take(self, bundle: dict[str, Any]) -> None:
        now = time.time()
        parameters = bundle["entry"][0]["resource"]["parameter"]
        kind = next(p["valueCode"] for p in parameters if p["name"] == "type")
        subscription = next(p["valueReference"]["reference"] for p in parameters if p["name"] == "subscription")
        with self.lock:
            if kind == "handshake":
                self.handshakes.add(subscription)
                return
            for parameter in parameters:
                if parameter["name"] != "notification-event":
                    continue
                parts = {p["name"]: p for p in parameter["part"]}
                recorded = datetime.fromisoformat(parts["timestamp"]["valueInstant"]).timestamp()
                self.events.setdefault(subscription, []).append(
                    (int(parts["event-number"]["valueString"]), now - recorded))
            self.last = now


def receiver(received: Received) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the worker's connection open, as a receiving system would

        def do_POST(self) -> None:
            received.take(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/notify"


def burst(tokens: Tokens, patients: list[str], per_patient: int, clients: int) -> float:
    """CarePlan creates, `per_patient` for each patient, interleaved; returns writes per second."""
    sessions: dict[int, requests.Session] = {}
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    work = [p for _ in range(per_patient) for p in patients]

    def write(patient: str) -> None:
        session = sessions.setdefault(threading.get_ident(), session_as(tokens))
        body = json.dumps({"resourceType": "CarePlan", "status": "active", "intent": "plan",
                           "subject": {"reference": f"Patient/{patient}"}})
        answer = session.post(f"{tokens.fhir_base}/CarePlan", data=body, headers=headers, timeout=120)
        if answer.status_code != 201:
            raise SystemExit(f"write failed: {answer.status_code} {answer.text[:300]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(write, work))
    return len(work) / (time.perf_counter() - start)


def subscribe(tokens: Tokens, patient: str, endpoint: str) -> str:
    body = {"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": TOPIC,
            "_criteria": {"extension": [{"url": BACKPORT + "backport-filter-criteria",
                                         "valueString": f"CarePlan?patient=Patient/{patient}"}]},
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                        "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content",
                                                    "valueCode": "id-only"}]}}}
    answer = session_as(tokens).post(f"{tokens.fhir_base}/Subscription", json=body, timeout=60)
    if answer.status_code != 201:
        raise SystemExit(f"subscribe failed: {answer.status_code} {answer.text[:300]}")
    return f"Subscription/{answer.json()['id']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8, help="concurrent writing clients")
    parser.add_argument("--workers", type=int, default=1, help="`sharedcare worker` processes")
    parser.add_argument("--threads", type=int, default=4, help="delivering threads of each worker")
    args = parser.parse_args()
    per_patient = args.writes // args.subscriptions
    received = Received()
    http, endpoint = receiver(received)
    with scratch_database("notify") as url:
        env = {"DATABASE_URL": url, **ENV}
        with gunicorn("server.app:create_app()", env) as base:
            tokens = client_tokens(url, base, *INTEGRATION)
            session = session_as(tokens)
            patients = [f"bench-{n:03d}" for n in range(args.subscriptions)]
            for patient in patients:
                answer = session.put(f"{tokens.fhir_base}/Patient/{patient}", json={
                    "resourceType": "Patient", "id": patient, "name": [{"family": "Bench"}], "gender": "female",
                    "birthDate": "1940-01-01"}, timeout=60)
                assert answer.status_code in (200, 201), answer.text
            workers = [subprocess.Popen([str(BIN / "sharedcare"), "worker", "--threads", str(args.threads)],
                                        cwd=PROJECT,
                                        env={**os.environ, **env, "LOG_LEVEL": "WARNING"}, start_new_session=True)
                       for _ in range(args.workers)]
            try:
                without = burst(tokens, patients, per_patient, args.clients)
                subscriptions = [subscribe(tokens, p, endpoint) for p in patients]
                deadline = time.time() + 120
                while len(received.handshakes) < len(subscriptions) and time.time() < deadline:
                    time.sleep(0.1)
                started = time.time()
                with_subscriptions = burst(tokens, patients, per_patient, args.clients)
                written = time.time()
                expected = per_patient * len(subscriptions)
                deadline = time.time() + 600
                while sum(len({n for n, _ in e}) for e in received.events.values()) < expected \
                        and time.time() < deadline:
                    time.sleep(0.2)
                drained = received.last
            finally:
                for process in workers:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(30)
    http.shutdown()
    latencies = [latency for events in received.events.values() for _n, latency in events]
    distinct = {(s, n) for s, events in received.events.items() for n, _ in events}
    complete = sum(1 for s in subscriptions if sorted({n for n, _ in received.events.get(s, [])})
                   == list(range(1, per_patient + 1)))
    print(f"notifications ({server_version()}): {expected} qualifying writes to {len(subscriptions)} "
          f"subscriptions, {args.clients} writing clients, {args.workers} worker(s) of {args.threads} delivering "
          "threads, PostgreSQL")
    print(f"  writes/s without subscriptions: {without:,.0f}")
    print(f"  writes/s with subscriptions:    {with_subscriptions:,.0f}  (ratio {with_subscriptions / without:.2f}, "
          "target >= 0.8)")
    print(f"  delivered: {len(distinct):,} events in {drained - started:.1f} s from the burst's start "
          f"({len(distinct) / (drained - started):,.0f}/s); the burst took {written - started:.1f} s, "
          f"the last event arrived {drained - written:.1f} s after it")
    print(f"  latency recorded -> received: p50 {percentile(latencies, 0.5) * 1000:,.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:,.0f} ms (target p99 < 2,000 ms)")
    print(f"  lost: {expected - len(distinct)}; received twice: {len(latencies) - len(distinct)}; "
          f"subscriptions with exactly 1..{per_patient}: {complete}/{len(subscriptions)}")


if __name__ == "__main__":
    main()
