"""A local append-only spool of audit records per server process, shipped in batches into the audit trail."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".spool"
ROTATE_BYTES = 8 * 1024 * 1024  # a process starts a fresh spool once its own holds this much
SHIP_EVERY = 1.0  # seconds between a process's shipments of its own spool (an auditor's read ships first)
SWEEP_EVERY = 30.0  # seconds between looks for the spools of processes that are gone


def spool_folder(root: str, database_url: str) -> Path:
    """The folder of one database's spools under AUDIT_SPOOL_DIR (servers of other databases may share it)."""
    return Path(root) / hashlib.sha256(database_url.encode()).hexdigest()[:16]


class SpoolFile:
    """One process's spool: appended to by its request threads, and flock-ed for as long as the process
    uses it, so no other process takes it for a dead one's."""

    def __init__(self, folder: Path, fsync: bool) -> None:
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        hidden = folder / f".{name}.new"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | (os.O_DSYNC if fsync else 0)
        self.fd = os.open(hidden, flags, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.path = folder / f"{name}{SUFFIX}"
        os.rename(hidden, self.path)  # shippers see it only once it is locked

    def append(self, line: bytes) -> None:
        view = memoryview(line)
        while view:  # a regular file takes it whole but on a full disk
            view = view[os.write(self.fd, view):]

    def size(self) -> int:
        return os.fstat(self.fd).st_size


class AuditSpool:
    """Audit records appended to a file of the process's own, one write() each: a record is kept once its
    write returns (the page cache outlives a killed process; with `fsync`, each write also waits for the
    disk, so it outlives a crash of the host). `ship(path)` moves what is new in a spool into the trail,
    exactly once, and answers the spool's new shipped mark (None when nothing whole was new); `forget(name)`
    drops a removed spool's bookkeeping.
    A thread of the process ships its own spool every SHIP_EVERY seconds; spools whose process is gone
    (their lock is free) are shipped and removed at start and every SWEEP_EVERY seconds; `ship_all` ships
    every spool of the folder, live or not, for a reader of the trail that must miss nothing answered."""

    def __init__(self, folder: Path, ship: Callable[[Path], int | None], forget: Callable[[str], None], *,
                 fsync: bool = False) -> None:
        self.folder = folder
        self.ship = ship
        self.forget = forget
        self.fsync = fsync
        self.lock = threading.Lock()  # appends, and the swap to a fresh spool
        self.current: SpoolFile | None = None
        self.pid = 0  # the process the current spool and thread belong to (a forked child starts its own)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.retired: list[SpoolFile] = []  # this process's full spools, still to be removed
        self.idle: dict[Path, int] = {}  # spool -> its size when it last had nothing whole left to ship

    def append(self, line: bytes) -> None:
        """Keep one record (a line of JSON ending in a newline)."""
        if self.pid != os.getpid():
            self.start()
        with self.lock:
            self.current.append(line)  # type: ignore[union-attr]

    def start(self) -> None:
        """Open this process's spool and start its shipping thread (which first ships the dead's spools)."""
        with self.lock:
            if self.pid == os.getpid():
                return
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # records name patients: private
            self.current = SpoolFile(self.folder, self.fsync)
            self.pid = os.getpid()
            self.stopped = threading.Event()
            self.thread = threading.Thread(target=self.run, name="audit-spool", daemon=True)
            self.thread.start()

    def run(self) -> None:
        next_sweep = time.monotonic()
        while True:
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_EVERY
                self.attempt(self.sweep)
            if self.stopped.wait(SHIP_EVERY):
                return  # `close` ships what is left
            self.attempt(self.ship_own)

    def attempt(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:  # the database may be away: the records wait in their spool
            log.exception("shipping audit records from %s failed; they stay there", self.folder)

    def ship_own(self) -> None:
        """Ship this process's spool; once it is large, continue in a fresh one and remove the old (or retry
        that at the next round, if the database is away)."""
        current = self.current
        if current is None:
            return
        self.ship_out(current.path)
        if current.size() >= ROTATE_BYTES:
            fresh = SpoolFile(self.folder, self.fsync)
            with self.lock:
                self.current = fresh
            self.retired.append(current)
        self.remove_retired()

    def remove_retired(self) -> None:
        while self.retired:
            retired = self.retired[0]
            self.remove(retired.path)
            os.close(retired.fd)
            self.retired.pop(0)

    def ship_all(self) -> None:
        """Ship every spool of the folder, this process's, other live processes' and the dead's."""
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            self.ship_out(path)

    def sweep(self) -> None:
        """Ship and remove the spools of processes that are gone."""
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            current = self.current
            if current is None or path != current.path:
                self.take_over(path)

    def take_over(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process lives and ships it
            if not same_file(path, fd):
                return  # removed and gone meanwhile
            self.remove(path)
        finally:
            os.close(fd)

    def remove(self, path: Path) -> None:
        """Ship all of a spool nobody appends to any more (its lock held by the caller), then remove it. Bytes
        after its last newline would be a write that never returned: no request was answered on them."""
        self.ship_out(path)
        path.unlink()
        self.idle.pop(path, None)
        self.forget(path.name)

    def ship_out(self, path: Path) -> None:
        """Ship what a spool held when this began (in several transactions only when it is over a shipment's
        size): what is appended meanwhile waits for the next round, so a busy process ships once a round,
        not in a loop of small transactions. A spool that has not grown since it was last shipped costs no
        transaction."""
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self.idle.pop(path, None)
            return
        if self.idle.get(path) == size:
            return
        while (mark := self.ship(path)) is not None and mark < size:
            pass
        self.idle[path] = size

    def close(self) -> None:
        """Stop shipping: ship this process's spool a last time and remove it."""
        if self.pid != os.getpid() or self.thread is None:
            return
        self.stopped.set()
        self.thread.join(30)
        with self.lock:
            current = self.current
            self.current, self.pid = None, 0
        if current is not None:
            self.retired.append(current)
        self.remove_retired()


def same_file(path: Path, fd: int) -> bool:
    try:
        return path.stat().st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False

