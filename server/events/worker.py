"""The delivery worker (`sharedcare worker`): fan-out and delivery in a loop, woken when a write commits.

PostgreSQL: LISTEN on the channel the outbox NOTIFYs in the writer's transaction, so a worker wakes at the
commit; several workers may run (fan-out under an advisory lock, each subscription claimed by one).
SQLite: one worker process claims at all (an exclusive `flock` on a file beside the database; another
waits as a standby) and polls every `poll_s` seconds."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ..fhir.dates import now_us
from ..store.schema import subscriptions
from ..store.services import StoreServices
from .delivery import SECOND, Deliverer, DeliverySettings, due
from .fanout import fan_out
from .outbox import WAKE_CHANNEL

log = logging.getLogger(__name__)
IDLE_WAIT_S = 1.0
BURST = 50


class Waker:
    """Waits for the next commit that recorded events (PostgreSQL LISTEN) or a short poll (SQLite)."""

    def __init__(self, services: StoreServices, poll_s: float) -> None:
        self.services = services
        self.poll_s = poll_s
        self.postgres = services.database.writer.dialect.name == "postgresql"
        self.listener: Any = None

    def wait(self, seconds: float) -> None:
        if not self.postgres:
            time.sleep(min(seconds, self.poll_s))
            return
        try:
            if self.listener is None:
                import psycopg

                url = self.services.database.writer.url.set(drivername="postgresql")
                self.listener = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
                self.listener.execute(f"LISTEN {WAKE_CHANNEL}")
                return  # events may have come while not listening: look again at once
            for _ in self.listener.notifies(timeout=seconds, stop_after=1):
                pass
        except Exception as exc:  # the database went away: listen again once it is back
            log.warning("notifications listener lost: %s", exc)
            self.close()
            time.sleep(min(seconds, 1.0))

    def close(self) -> None:
        if self.listener is not None:
            with suppress(Exception):
                self.listener.close()
            self.listener = None


@contextmanager
def sqlite_claim(services: StoreServices, stop: threading.Event) -> Iterator[bool]:
    """On SQLite, the exclusive claim of the one worker that delivers (others wait as standbys)."""
    database = services.database.writer.url.database or ""
    if services.database.writer.dialect.name != "sqlite" or not database:
        yield True
        return
    with open(Path(database).with_name(Path(database).name + ".worker.lock"), "a+") as handle:
        while not stop.is_set():
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                stop.wait(1.0)
                continue
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
            return
        yield False


def next_due_in(services: StoreServices) -> float:
    """Seconds until the earliest retry or heartbeat falls due (at most IDLE_WAIT_S)."""
    now = now_us()
    with services.database.reader.connect() as connection:
        s = subscriptions.c
        soonest = connection.execute(select(func.min(func.coalesce(s.heartbeat_due, s.next_attempt)))
                                     .where(s.status.in_(("requested", "active")))).scalar()
        if connection.execute(select(s.id).where(due(now)).limit(1)).first() is not None:
            return 0.0
    if soonest is None:
        return IDLE_WAIT_S
    return max(0.0, min(IDLE_WAIT_S, (soonest - now) / SECOND))


def run(services: StoreServices, settings: DeliverySettings, base: str, stop: threading.Event,
        poll_s: float = 0.1, threads: int = 1) -> None:
    """Fan out and deliver until `stop` is set; a database outage is waited out. With `threads` above one
    (PostgreSQL), that many threads deliver (each subscription claimed by one) while this one fans out."""
    deliverer = Deliverer(services, settings, base)
    waker = Waker(services, poll_s)
    with sqlite_claim(services, stop) as claimed:
        if not claimed:
            return
        log.info("notifications worker running")
        if threads > 1 and waker.postgres:
            run_threaded(services, deliverer, waker, stop, threads)
        else:
            while not stop.is_set():
                guarded(lambda: step(services, deliverer, waker, stop), waker, stop)
    waker.close()


def step(services: StoreServices, deliverer: Deliverer, waker: Waker, stop: threading.Event) -> None:
    """One round of the single-threaded loop: fan out, deliver a burst, else wait for work."""
    taken = fan_out(services, deliverer.owners)
    retired = deliverer.retire_ended()  # at most once a second, busy or not
    busy = bool(taken) or retired > 0
    for _ in range(BURST):
        if stop.is_set() or not deliverer.deliver_one():
            break
        busy = True
    if busy:
        return
    if taken is None:  # another worker fans out (and is woken by each commit): look again later
        stop.wait(next_due_in(services))
    else:
        waker.wait(next_due_in(services))


def run_threaded(services: StoreServices, deliverer: Deliverer, waker: Waker, stop: threading.Event,
                 threads: int) -> None:
    """Fan-out in this thread, delivery in `threads` others woken after each fan-out or commit."""
    kick = threading.Condition()

    def deliver() -> None:
        while not stop.is_set():
            def one() -> None:
                if not deliverer.deliver_one():
                    with kick:
                        kick.wait(max(0.05, min(IDLE_WAIT_S, next_due_in(services))))
            guarded(one, None, stop)

    pool = [threading.Thread(target=deliver, name=f"deliver-{n}", daemon=True) for n in range(threads)]
    for thread in pool:
        thread.start()

    def fan() -> None:
        taken = fan_out(services, deliverer.owners)
        deliverer.retire_ended()
        if taken is None:  # another worker fans out (and is woken by each commit): look again later
            stop.wait(IDLE_WAIT_S)
        elif taken == 0:
            waker.wait(IDLE_WAIT_S)
        with kick:
            kick.notify_all()

    while not stop.is_set():
        guarded(fan, waker, stop)
    with kick:
        kick.notify_all()
    for thread in pool:
        thread.join(30)


def guarded(work: Callable[[], None], waker: Waker | None, stop: threading.Event) -> None:
    """Run one round; a database that is away or restarting is waited out (the round runs again)."""
    try:
        work()
    except Exception as exc:
        log.warning("notifications worker: %s: %s", type(exc).__name__, str(exc)[:300])
        if waker is not None:
            waker.close()
        stop.wait(1.0)
