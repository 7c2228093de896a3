"""A reference, not the server: Flask running the read lookup with raw psycopg (no FHIR logic)."""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, Response

LOOKUP = ("SELECT v.body FROM resources r JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version "
          "WHERE r.type = %s AND r.id = %s")


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

    @app.get("/fhir/<resource_type>/<resource_id>")
    def read(resource_type: str, resource_id: str) -> Response:
        row = connection().execute(LOOKUP, (resource_type, resource_id)).fetchone()
        if row is None:
            return Response(b"{}", status=404, mimetype="application/fhir+json")
        return Response(row[0], mimetype="application/fhir+json")

    return app
