"""The application factory: the FHIR API as WSGI in front of Flask (health and the rest), from settings."""

from __future__ import annotations

import logging

import orjson
from alembic.script import ScriptDirectory
from flask import Flask, Response
from sqlalchemy import text

from .api.app import FhirApi
from .api.auditing import auth_event_recorder, refusal_recorder
from .api.http import FhirHttp, install_error_funnel
from .api.operations import register_all
from .care.service import install as install_care
from .config import Settings
from .events.health import backlog
from .events.install import endpoint_policy, set_endpoint_policy
from .logbounds import bound_log_lines
from .security.authserver import AuthServer
from .security.clients import policy_folders
from .store.db import Database
from .store.migrate import alembic_config
from .store.services import StoreServices

HEALTH_PATHS = ("/health", "/health/live", "/health/ready")  # open, answered by Flask beside the FHIR API


def create_app(settings: Settings | None = None) -> Flask:
    """Build a Flask app for the given settings (from the environment by default)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    bound_log_lines()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    database = Database.connect(settings.database_url, pool_size=settings.pool_size, echo=settings.echo_sql,
                                synchronous_reads=settings.audit_reads_sync, limits=settings.statement_limits)
    services = StoreServices.build(database, settings.base_url, settings.project_base_uri,
                                   settings.mandatory_profiles, settings.access_policy_dir or None,
                                   settings.referential_integrity)
    if settings.audit_spool_dir:
        services.audit.use_spool(settings.audit_spool_dir, database, fsync=settings.audit_spool_fsync)
    install_care(services)  # case management: its write listener (incidence) and operations
    set_endpoint_policy(services, endpoint_policy(settings))  # where Subscriptions may send (server/events)
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
                            on_auth_event=auth_event_recorder(services), on_refusal=refusal_recorder(services),
                            reserved=HEALTH_PATHS, max_target=settings.max_request_line)
    schema_head = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())

    def answer(status: str, code: int, **extra: object) -> Response:
        body = {"status": status, "fhirVersion": "4.0.1", "database": engine.dialect.name, **extra}
        return Response(orjson.dumps(body), status=code, mimetype="application/json")

    @app.get("/health/live")
    def live() -> Response:
        """The process serves requests (whatever the database's state): restart it only when this fails."""
        return answer("ok", 200)

    @app.get("/health")
    @app.get("/health/ready")
    def ready() -> Response:
        """The database answers and its schema is the one this code needs: send requests here."""
        try:
            with engine.connect() as connection:
                versions = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
                notifications = backlog(connection) if versions == schema_head else None
        except Exception as exc:  # the health endpoint reports, it does not fail
            return answer(f"database unavailable: {type(exc).__name__}", 503)
        if versions != schema_head:
            return answer(f"database schema at {', '.join(sorted(versions)) or 'none'}, this server needs "
                          f"{', '.join(sorted(schema_head))}: run `sharedcare db upgrade`", 503)
        return answer("ok", 200, notifications=notifications)

    return app
