"""A reference, not the server: Flask running a case-status statement with raw psycopg (no FHIR logic).

RAW_STATEMENT picks the statement: `stored` (default) reads the patient's stored answer, as the server does
when it is fresh; `data` reads everything an answer is made from (the patient, what is linked to them, their
team members and the members' practitioners), as the server does when it makes one."""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
from flask import Flask, Response, request
from sqlalchemy.dialects import postgresql

from server.care.documents import VARIABLE, find_statement
from server.care.status import lookup_sql
from server.store.search.reach import CompiledRead


def statement(mode: str) -> tuple[str, Any]:
    """The statement's text for psycopg, and how its arguments are made from (NHS number, system)."""
    if mode == "data":
        return lookup_sql(True).replace("?", "%s"), lambda value, system: (value, system)
    compiled = CompiledRead.compiled(find_statement(True, None), postgresql.dialect(), VARIABLE)
    return compiled.sql, lambda value, system: compiled.arguments(value=value, system=system)


def create_app() -> Flask:
    app = Flask(__name__)
    local = threading.local()
    url = os.environ["RAW_DATABASE_URL"]
    mode = os.environ.get("RAW_STATEMENT", "stored")
    sql, arguments = statement(mode)

    def connection() -> psycopg.Connection:
        if getattr(local, "connection", None) is None:
            local.connection = psycopg.connect(url, autocommit=True)
        return local.connection

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"status":"ok"}', mimetype="application/json")

    @app.get("/fhir/Patient/$case-status")
    def case_status() -> Response:
        system, _, value = request.args.get("identifier", "").partition("|")
        rows = connection().execute(sql, arguments(value, system)).fetchall()
        if mode == "stored":  # (patient key, generation, day, basis, body, id, objecting)
            if not rows or rows[0][4] is None:
                return Response(b"{}", status=404, mimetype="application/fhir+json")
            return Response(rows[0][4], mimetype="application/fhir+json")
        if not rows:  # (type, id, body, matched)
            return Response(b"{}", status=404, mimetype="application/fhir+json")
        return Response("[" + ",".join(row[2] for row in rows if row[2]) + "]", mimetype="application/fhir+json")

    return app
