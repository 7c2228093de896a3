"""A reference, not the server: Flask running the case-status SQL with raw psycopg (no FHIR logic)."""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, Response, request

from server.care.status import lookup_sql

SQL = lookup_sql(True).replace("?", "%s")


def create_app() -> Flask:
    app = Flask(__name__)
    local = threading.local()
    url = os.environ["RAW_DATABASE_URL"]

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
        rows = connection().execute(SQL, (value, system)).fetchall()
        if not rows:
            return Response(b"{}", status=404, mimetype="application/fhir+json")
        return Response("[" + ",".join(body for _t, _i, body in rows) + "]", mimetype="application/fhir+json")

    return app
