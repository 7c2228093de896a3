"""Membership in a list of values: one array parameter on PostgreSQL (`= ANY`), an IN list elsewhere.

A long IN list costs PostgreSQL a parse and plan per distinct length and the driver a scan of a long
statement; a single array parameter keeps one statement text, which the driver prepares once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam


def among(column: Any, values: Iterable[Any], postgres: bool) -> ColumnElement[bool]:
    """`column` is one of `values` (an IN list on SQLite, `= ANY(array)` on PostgreSQL)."""
    listed = list(values)
    if len(listed) == 1:
        return column == listed[0]
    if postgres and listed:
        return column == any_(bindparam(None, listed, type_=ARRAY(column.type)))
    return column.in_(listed)
