"""Log lines stay a few kB long whatever an error carries (a statement of megabytes, a client's input)."""

from __future__ import annotations

import io
import logging

from server.logbounds import MAX_LOGGED, BoundedFormatter, bound_log_lines


def test_a_huge_error_is_logged_as_its_head_and_tail() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        bound_log_lines()
        assert isinstance(handler.formatter, BoundedFormatter)
        try:
            raise ValueError("SELECT " + "semi_join, " * 150_000 + "THE END")
        except ValueError:
            logging.getLogger("tests.bounds").error("search failed", exc_info=True)
    finally:
        root.removeHandler(handler)
    written = stream.getvalue()
    assert len(written) < MAX_LOGGED + 200, len(written)
    assert written.startswith("search failed") and "THE END" in written and "characters left out" in written
