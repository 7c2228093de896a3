"""A reference, not the server: Flask running a case-status statement with raw psycopg (no FHIR logic).

RAW_STATEMENT picks the statement: `stored` (default) reads the patient's stored answer, as the server does
when it is fresh; `data` reads everything an answer is made from (the patient, what is linked to them, their
team members and the members' practitioners), as the server does when it makes one."""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, Response, request

from server.care.documents import find_sql
from server.care.status import lookup_sql

STATEMENTS = {"stored": find_sql(True).replace("?", "%s"), "data": lookup_sql(True).replace("?", "%s")}


def create_app() -> Flask:
    app = Flask(__name__)
    local = threading.local()
    url = os.environ["RAW_DATABASE_URL"]
    mode = os.environ.get("RAW_STATEMENT", "stored")
    sql = STATEMENTS[mode]

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
        rows = connection().execute(sql, (value, system)).fetchall()
        if mode == "stored":  # (patient key, generation, day, basis, body)
            if not rows or rows[0][4] is None:
                return Response(b"{}", status=404, mimetype="application/fhir+json")
            return Response(rows[0][4], mimetype="application/fhir+json")
        if not rows:  # (type, id, body, matched)
            return Response(b"{}", status=404, mimetype="application/fhir+json")
        return Response("[" + ",".join(row[2] for row in rows if row[2]) + "]", mimetype="application/fhir+json")

    return app
