"""Strict reading of URL query strings and paths: broken percent-encoding is refused, never taken literally."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_to_bytes

from .outcome import bad_request

BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def check_encoding(text: str, where: str, expression: str | None = None) -> None:
    """400 when `text` (a query string, path or criterion as sent) holds a `%` that does not start a
    two-digit hex escape, or escapes that do not decode to UTF-8 text. `where` names it for the client;
    `expression` is its FHIRPath location when it has one (`Bundle.entry[2].request.url`)."""
    located = (expression,) if expression else ()
    broken = BROKEN_ESCAPE.search(text)
    if broken is not None:
        shown = text[broken.start():broken.start() + 3]
        raise bad_request(f"{where}: broken percent-encoding {shown!r} at character {broken.start() + 1} "
                          "(a literal '%' is sent as %25)", located, code="value")
    if "%" in text:
        try:
            unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad_request(f"{where}: broken percent-encoding (the escapes do not decode to UTF-8 text)", located,
                              code="value") from exc


def parse_query(text: str, where: str, expression: str | None = None) -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string (`a=1&b=2`, a leading `?` allowed), decoded; 400 when
    its percent-encoding is broken."""
    text = text[1:] if text.startswith("?") else text
    check_encoding(text, where, expression)
    return parse_qsl(text, keep_blank_values=True)
