"""The production gunicorn worker: requests read whole before a thread takes them; refusals as OperationOutcomes."""

from __future__ import annotations

import os
import re
import selectors
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import orjson
from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

from ..fhir.outcome import Issue, operation_outcome

HEAD_END = b"\r\n\r\n"
READ_PIECE = 256 * 1024
CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)
CHUNKED = re.compile(rb"^transfer-encoding[ \t]*:.*chunked", re.IGNORECASE | re.MULTILINE)
EXPECT_CONTINUE = re.compile(rb"^expect[ \t]*:[ \t]*100-continue[ \t]*\r\n", re.IGNORECASE | re.MULTILINE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
ADVICE = {
    414: "Send a long search as POST [base]/[type]/_search with its parameters in an "
         "application/x-www-form-urlencoded body",
    431: "Send fewer or shorter headers",
    408: "Send the whole request without pausing",
}


@dataclass
class Filling:
    """A request being read off its connection by the worker's event loop."""

    data: bytearray
    started: float
    idle_since: float = field(default_factory=time.monotonic)


def request_complete(data: bytes | bytearray, max_head: int, max_body: int) -> bool:
    """Whether `data` holds a whole request (head and body), or so much that the parser and the application
    must refuse it anyway."""
    end = data.find(HEAD_END)
    if end < 0:
        return len(data) > max_head
    head = bytes(data[:end])
    body = len(data) - end - len(HEAD_END)
    if CHUNKED.search(head):
        return body > max_body or chunks_complete(data, end + len(HEAD_END))
    lengths = CONTENT_LENGTH.findall(head)
    length = int(lengths[0]) if lengths else 0
    return length > max_body or body >= length


def chunks_complete(data: bytes | bytearray, start: int) -> bool:
    """Whether a chunked body starting at `start` has arrived up to its last chunk and trailers."""
    position = start
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return False
        try:
            size = int(bytes(data[position:line_end]).split(b";", 1)[0].strip() or b"x", 16)
        except ValueError:
            return True  # malformed: the parser refuses it
        if size == 0:
            return data.find(b"\r\n", line_end + 2) >= 0 and (
                data[line_end + 2:line_end + 4] == b"\r\n" or data.find(HEAD_END, line_end) >= 0)
        position = line_end + 2 + size + 2
        if position > len(data):
            return False


def outcome_bytes(status: int, reason: str, diagnostics: str) -> bytes:
    """A whole HTTP response carrying an OperationOutcome; the connection closes after it."""
    advice = ADVICE.get(status)
    text = f"{reason}: {diagnostics}" if diagnostics else reason
    issue = Issue("too-costly" if status in (413, 414, 431) else "processing",
                  f"{text}. {advice}" if advice else text)
    body = orjson.dumps(operation_outcome([issue]))
    return (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/fhir+json; "
            f"charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


class CapturedError:
    """Stands in for a client socket while gunicorn writes one of its own error pages, to learn its status."""

    def __init__(self) -> None:
        self.written = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, _flag: Any) -> None:
        return None

    def sendall(self, data: bytes) -> None:
        self.written += data

    def send(self, data: bytes) -> int:
        self.written += data
        return len(data)


class FrontWorker(ThreadWorker):
    """gunicorn's threaded worker, except that a connection gets a thread only once its whole request has
    arrived: the event loop reads heads and bodies as they come, so stalled or slow clients hold no thread.
    A head must arrive within `REQUEST_HEADER_TIMEOUT` seconds and a body may pause at most
    `REQUEST_BODY_TIMEOUT` seconds, or the answer is 408. Every refusal of the front (request line, header
    size and count, framing) is an OperationOutcome, not gunicorn's HTML. (With TLS terminated by gunicorn
    itself, requests go to threads as gunicorn's own worker sends them: put a proxy in front instead.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filling: dict[TConn, Filling] = {}
        self.header_timeout = float(os.environ.get("REQUEST_HEADER_TIMEOUT", "10"))
        self.body_timeout = float(os.environ.get("REQUEST_BODY_TIMEOUT", "10"))
        self.max_body = int(os.environ.get("MAX_REQUEST_BYTES", str(64 * 1024 * 1024)))
        self.max_head = (self.cfg.limit_request_line or 8190) + \
            (self.cfg.limit_request_fields or 100) * ((self.cfg.limit_request_field_size or 8190) + 2) + 4

    def enqueue_req(self, conn: TConn) -> None:
        if self.cfg.is_ssl:
            super().enqueue_req(conn)
            return
        ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        now = time.monotonic()
        self.filling[conn] = Filling(bytearray(ahead or b""), now, now)
        conn.sock.setblocking(False)
        if not self.read_some(conn):  # usually the request is there already (its socket was readable)
            self.poller.register(conn.sock, selectors.EVENT_READ, lambda _sock: self.on_fill_readable(conn))

    def on_fill_readable(self, conn: TConn) -> None:
        if conn in self.filling and self.read_some(conn):
            with suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)

    def read_some(self, conn: TConn) -> bool:
        """Read what has arrived; whether the connection is done filling (handed to a thread, or closed)."""
        filling = self.filling[conn]
        try:
            piece = conn.sock.recv(READ_PIECE)
        except (BlockingIOError, InterruptedError):
            return self.fill_done(conn)
        except OSError:
            piece = b""
        if not piece:  # the client went away before its request was whole
            self.drop_filling(conn)
            return True
        filling.data += piece
        filling.idle_since = time.monotonic()
        return self.fill_done(conn)

    def fill_done(self, conn: TConn) -> bool:
        """Hand the connection to a thread when its request is whole; whether it was."""
        filling = self.filling[conn]
        self.answer_continue(conn, filling)
        if not request_complete(filling.data, self.max_head, self.max_body):
            return False
        del self.filling[conn]
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(filling.data))
        conn.data_ready = True
        super().enqueue_req(conn)
        return True

    @staticmethod
    def answer_continue(conn: TConn, filling: Filling) -> None:
        """A head asking for `100 Continue` gets it here, and loses the ask (so the thread does not ask again)."""
        end = filling.data.find(HEAD_END)
        if end < 0:
            return
        head = bytes(filling.data[:end + 2])
        plain = EXPECT_CONTINUE.sub(b"", head)
        if plain != head:
            filling.data[:end + 2] = plain
            with suppress(OSError):
                conn.sock.send(CONTINUE)

    def drop_filling(self, conn: TConn, answer: bytes = b"") -> None:
        self.filling.pop(conn, None)
        with suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if answer:
            with suppress(OSError):
                conn.sock.send(answer)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also answer 408 to connections whose head or body stopped coming."""
        super().murder_pending()
        now = time.monotonic()
        for conn, filling in list(self.filling.items()):
            has_head = filling.data.find(HEAD_END) >= 0
            if has_head and now - filling.idle_since > self.body_timeout:
                self.drop_filling(conn, outcome_bytes(408, "Request Timeout", f"the request body stopped "
                                                      f"arriving for {self.body_timeout:g} s"))
            elif not has_head and now - filling.started > self.header_timeout:
                if filling.data:
                    self.drop_filling(conn, outcome_bytes(408, "Request Timeout", f"the request head did not "
                                                          f"arrive within {self.header_timeout:g} s"))
                else:
                    self.drop_filling(conn)  # an idle connection that never sent anything

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's status for the error (and its log line), answered as an OperationOutcome."""
        captured = CapturedError()
        super().handle_error(req, captured, addr, exc)
        status_line = captured.written.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 500
        reason = status_line[2] if len(status_line) > 2 else "Error"
        diagnostics = str(exc)[:500] if status < 500 else "Internal server error"
        with suppress(OSError):
            client.setblocking(True)
            client.sendall(outcome_bytes(status, reason, diagnostics))
