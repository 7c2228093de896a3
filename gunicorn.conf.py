"""Gunicorn settings for production serving: `gunicorn -c gunicorn.conf.py 'server.app:create_app()'`.

The worker (`server.api.front.FrontWorker`, gunicorn's threaded worker) reads each request whole in its event
loop before a thread serves it, so slow or stalled clients hold no thread; heads must arrive within
REQUEST_HEADER_TIMEOUT seconds and bodies may pause at most REQUEST_BODY_TIMEOUT seconds (408 after)."""

import multiprocessing
import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8080')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("WORKER_CLASS", "server.api.front.FrontWorker")
threads = int(os.environ.get("WORKER_THREADS", "4"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))  # open connections per worker
timeout = int(os.environ.get("WORKER_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# gunicorn's largest request line; the application refuses URLs past MAX_REQUEST_LINE with an
# OperationOutcome naming POST _search, and the worker answers the front's own limits as OperationOutcomes
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def post_worker_init(worker: object) -> None:
    """A worker of the FHIR server loads the resource models before it takes its first request."""
    fhir_api = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("sharedcare")
    if fhir_api is not None:
        from server.fhir.types import load_models

        load_models(fhir_api.services.types)
