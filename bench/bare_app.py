"""The baseline: a bare Flask app answering a constant JSON body, served by the same gunicorn config."""

from __future__ import annotations

from flask import Flask, Response

BODY = (b'{"resourceType":"Patient","id":"example","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00Z"},'
        b'"name":[{"family":"Hardy","given":["Jean"]}],"gender":"female","birthDate":"1934-03-14"}')


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"status":"ok"}', mimetype="application/json")

    @app.get("/fhir/Patient/<resource_id>")
    def constant(resource_id: str) -> Response:
        return Response(BODY, mimetype="application/fhir+json")

    return app
