"""The application factory: the FHIR API as WSGI in front of Flask (health and the rest), from settings."""

from __future__ import annotations

import logging

import orjson
from flask import Flask, Response
from sqlalchemy import text

from .api.app import FhirApi
from .api.auditing import auth_event_recorder, refusal_recorder
from .api.http import FhirHttp, install_error_funnel
from .api.operations import register_all
from .care.service import install as install_care
from .config import Settings
from .security.authserver import AuthServer
from .security.clients import policy_folders
from .store.db import Database
from .store.services import StoreServices


def create_app(settings: Settings | None = None) -> Flask:
    """Build a Flask app for the given settings (from the environment by default)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    database = Database.connect(settings.database_url, pool_size=settings.pool_size, echo=settings.echo_sql,
                                synchronous_reads=settings.audit_reads_sync)
    services = StoreServices.build(database, settings.base_url, settings.project_base_uri,
                                   settings.mandatory_profiles, settings.access_policy_dir or None,
                                   settings.referential_integrity)
    if settings.audit_spool_dir:
        services.audit.use_spool(settings.audit_spool_dir, database, fsync=settings.audit_spool_fsync)
    install_care(services)  # case management: its write listener (incidence) and operations
    engine = database.reader
    fhir_api = FhirApi(services, settings.base_url)
    register_all(fhir_api)
    app.extensions["sharedcare"] = fhir_api
    app.extensions["sharedcare.settings"] = settings
    auth = AuthServer(database, ca_bundle=settings.jwks_ca_bundle,
                      policy_folders=policy_folders(settings.access_policy_dir or None))
    app.extensions["sharedcare.auth"] = auth
    install_error_funnel(app)
    app.wsgi_app = FhirHttp(fhir_api, app.wsgi_app, fhir_path=settings.fhir_path,  # type: ignore[method-assign]
                            base_url=settings.base_url, max_bytes=settings.max_request_bytes, auth=auth,
                            on_auth_event=auth_event_recorder(services), on_refusal=refusal_recorder(services))

    @app.get("/health")
    def health() -> Response:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            status, code = "ok", 200
        except Exception as exc:  # the health endpoint reports, it does not fail
            status, code = f"database unavailable: {type(exc).__name__}", 503
        body = {"status": status, "fhirVersion": "4.0.1", "database": engine.dialect.name}
        return Response(orjson.dumps(body), status=code, mimetype="application/json")

    return app
