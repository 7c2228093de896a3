"""Log lines of a few kB at most: a statement or a client's input inside an error is cut, not written whole."""

from __future__ import annotations

import logging

MAX_LOGGED = 6000  # characters of one formatted record (its message and traceback together)


class BoundedFormatter(logging.Formatter):
    """Formats as usual, then keeps the head and the tail of a record longer than `MAX_LOGGED`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= MAX_LOGGED:
            return text
        half = MAX_LOGGED // 2
        return f"{text[:half]}\n... ({len(text) - MAX_LOGGED} characters left out) ...\n{text[-half:]}"


def bound_log_lines() -> None:
    """Give the root logger's plain stream handlers (those `logging.basicConfig` makes) a BoundedFormatter."""
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and not isinstance(handler.formatter, BoundedFormatter):
            current = handler.formatter
            handler.setFormatter(BoundedFormatter(current._fmt if current else None,
                                                  current.datefmt if current else None))
