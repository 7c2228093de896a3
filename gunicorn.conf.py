"""Gunicorn settings for production serving: `gunicorn -c gunicorn.conf.py 'server.app:create_app()'`."""

import multiprocessing
import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8080')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("WORKER_CLASS", "sync")
threads = int(os.environ.get("WORKER_THREADS", "4"))
timeout = int(os.environ.get("WORKER_TIMEOUT", "120"))
keepalive = 5
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
