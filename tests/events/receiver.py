"""A real HTTP receiver of notifications on localhost: records every Bundle it is sent, and can be told to
fail (answer 503), to be slow, or to note deliveries that overlap in time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Notification:
    """One Bundle received, read for the test: its SubscriptionStatus and event numbers."""

    bundle: dict[str, Any]
    headers: dict[str, str]
    received: float

    @property
    def status(self) -> dict[str, Any]:
        return self.bundle["entry"][0]["resource"]

    def param(self, name: str) -> Any:
        for parameter in self.status["parameter"]:
            if parameter["name"] == name:
                return next((v for k, v in parameter.items() if k.startswith("value")), None)
        return None

    @property
    def subscription(self) -> str:
        return self.param("subscription")["reference"].rsplit("/", 1)[-1]

    @property
    def type(self) -> str:
        return self.param("type")

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for parameter in self.status["parameter"]:
            if parameter["name"] == "notification-event":
                parts = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in parameter["part"]}
                out.append(parts)
        return out

    @property
    def numbers(self) -> list[int]:
        return [int(e["event-number"]) for e in self.events]


@dataclass
class Receiver:
    """What the receiver got, and how it answers next."""

    url: str = ""
    answer: int = 200
    delay: float = 0.0
    got: list[Notification] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, subscription: str, kind: str | None = "event-notification") -> list[Notification]:
        with self.lock:
            return [n for n in self.got if n.subscription == subscription and (kind is None or n.type == kind)]

    def numbers(self, subscription: str) -> list[int]:
        return [number for n in self.of(subscription) for number in n.numbers]

    def wait_for(self, test: Any, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if test():
                return
            time.sleep(0.05)
        raise AssertionError(f"not received in {seconds} s; got {[(n.type, n.numbers) for n in self.got]}")


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            bundle = json.loads(body)
            notification = Notification(bundle, dict(self.headers), time.time())
            key = notification.subscription
            with receiver.lock:
                if receiver.in_flight.get(key):
                    receiver.overlaps.append(key)
                receiver.in_flight[key] = receiver.in_flight.get(key, 0) + 1
            try:
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = receiver.answer
                if 200 <= answer < 300:
                    with receiver.lock:
                        receiver.got.append(notification)
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
            finally:
                with receiver.lock:
                    receiver.in_flight[key] -= 1

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/notify"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
