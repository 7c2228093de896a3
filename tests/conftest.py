"""Test fixtures: a real database (SQLite or PostgreSQL, chosen by TEST_DATABASE), the app and a live server.

Every app gets a registered test client (kind integration, scope system/*.cruds) whose bearer token its
`test_client()` sends; `http_session` does the same over real HTTP (see tests/auth.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings
from server.store.conformance import install_bundled
from server.store.migrate import upgrade
from tests.auth import ClientKey, authenticate_app, register_client, session_for
from tests.shared import MARK, PROJECT, SHARED, absent_message

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def backend() -> str:
    return os.environ.get("TEST_DATABASE", "sqlite")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: needs the shared data folder (SHARED_DIR, default ../shared)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests that need the shared data folder, before `-m` selects."""
    for item in items:
        if "shared_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(MARK)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Stops the run, naming the folder, when selected tests need the shared data folder and it is absent."""
    needing = [item.nodeid for item in session.items if item.get_closest_marker(MARK)]
    if needing and not SHARED.is_dir():
        pytest.exit(absent_message(needing), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder; its absence stops the run before any test (pytest_collection_finish)."""
    return SHARED


def create_database(tmp_dir: Path) -> tuple[str, object]:
    """A fresh, migrated database; returns its URL and a function that drops it."""
    if backend() == "sqlite":
        path = tmp_dir / f"test-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return url, lambda: None
    name = f"sharedcare_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    upgrade(url)
    return url, drop


def database_with_client(tmp_dir: Path) -> tuple[str, Callable[[], None], ClientKey]:
    """A fresh database with a registered test client (kind integration), for tests that run server processes
    of their own on it; returns its URL, the function that drops it and the client."""
    url, drop = create_database(tmp_dir)
    application = create_app(Settings.from_env({}, database_url=url))
    client = register_client(application)
    application.extensions["sharedcare"].services.database.dispose()
    return url, drop, client  # type: ignore[return-value]


def start_gunicorn(database_url: str, port: int, **environment: str) -> subprocess.Popen:
    """The production server (gunicorn with the project's configuration) in a session of its own, so that
    `os.killpg` reaches its master and workers; `environment` adds settings (WEB_CONCURRENCY, WORKER_CLASS...)."""
    settings = {**os.environ, "DATABASE_URL": database_url, "BIND": f"127.0.0.1:{port}", "LOG_LEVEL": "warning",
                **environment}
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "server.app:create_app()"],
                            cwd=PROJECT, env=settings, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = create_database(tmp_path_factory.mktemp("db"))
    install_bundled(url)  # the bundled profiles and terminology, as `sharedcare db upgrade` installs them
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings.from_env({}, database_url=database_url, pool_size=8)


@pytest.fixture(scope="session")
def app(settings: Settings):
    application = create_app(settings)
    authenticate_app(application)
    yield application
    application.extensions["sharedcare"].services.database.dispose()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The app served over real HTTP on a free local port; yields the FHIR base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fhir"
    server.shutdown()


@pytest.fixture(scope="session")
def http_session(app, live_server: str) -> Iterator[requests.Session]:
    """A requests.Session sending the app's test client's bearer token to `live_server`."""
    with session_for(live_server, app.extensions["tests.client"]) as session:
        yield session


@pytest.fixture()
def fresh_app(tmp_path: Path):
    """An app on its own empty database, for tests that count every row."""
    url, drop = create_database(tmp_path)
    application = create_app(Settings.from_env({}, database_url=url))
    authenticate_app(application)
    yield application
    application.extensions["sharedcare"].services.database.dispose()
    drop()  # type: ignore[operator]


@pytest.fixture(scope="session")
def sample_dir(shared_dir: Path) -> Path:
    """The sample extracts of ../shared/data/extracts-sample."""
    folder = shared_dir / "data" / "extracts-sample"
    if not folder.is_dir():
        pytest.fail(f"{folder} is absent: SHARED_DIR names a shared data folder without the sample extracts")
    return folder


@contextmanager
def app_factory(tmp_path_factory: pytest.TempPathFactory, prefix: str,
                prepare: Callable[[Flask], None] | None = None,
                finish: Callable[[Flask], None] | None = None) -> Iterator[Callable[[], Flask]]:
    """A factory of apps, each on its own empty database; every database is dropped on exit."""
    made: list[tuple[Flask, Callable[[], None]]] = []

    def make() -> Flask:
        url, drop = create_database(tmp_path_factory.mktemp(prefix))
        application = create_app(Settings.from_env({}, database_url=url))
        authenticate_app(application)
        if prepare is not None:
            prepare(application)
        made.append((application, drop))  # type: ignore[arg-type]
        return application

    try:
        yield make
    finally:
        for application, drop in made:
            if finish is not None:
                finish(application)
            application.extensions["sharedcare"].services.database.dispose()
            drop()
