"""The demo area, built once per session by `sharedcare demo` into a fresh database and served by gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT, create_database, start_gunicorn
from tests.support import free_port, wait_for


@dataclass
class Demo:
    """A built demo area: its database, the folder `sharedcare demo` ran in, the served base and the output."""

    database_url: str
    folder: Path
    base: str
    output: str

    def environment(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.database_url, "BASE_URL": self.base}

    def sharedcare(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run the `sharedcare` command in the demo's folder."""
        return subprocess.run([sys.executable, "-m", "server.cli", *arguments], cwd=self.folder, text=True,
                              capture_output=True, env={**self.environment(), "PYTHONPATH": str(PROJECT)},
                              timeout=600, check=False)

    def token(self, client: str) -> str:
        """A real access token for a demo client, signed with its key under var/clients/."""
        done = self.sharedcare("token", "--client", client, "--key", f"var/clients/{client}.jwk")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def session(self, client: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token(client)}"
        return session


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo")
    url, drop = create_database(folder)
    (folder / ".venv").symlink_to(PROJECT / ".venv")  # the README's commands call .venv/bin/sharedcare
    port = free_port()
    made = Demo(url, folder, f"http://127.0.0.1:{port}/fhir", "")
    built = made.sharedcare("demo", "--synth-dir", str(folder / "var" / "synth"))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    made.output = built.stdout
    server = start_gunicorn(url, port, BASE_URL=made.base, WEB_CONCURRENCY="2")
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        yield made
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
        drop()  # type: ignore[operator]
