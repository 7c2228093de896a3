"""`make demo` from a fresh clone to a served API: wall time of each phase, against the 2-minute target and
against a second `make demo` on the same clone (nothing to install or build) measured in the same run.

    ../.venv/bin/python demo_clone.py [--keep]

Clones this repository's committed HEAD into a temporary folder, runs `make demo` there (it installs into
the clone's .venv, builds the demo area on SQLite and serves on 127.0.0.1:8080, which must be free), and
times: the install (until the demo's first line), the demo build, the server answering /health/ready, and
a first authorised answer (a token from `sharedcare token` as the demo GP system, then a search). Then it
stops that server and does the same with a second `make demo`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:8080/fhir"
TARGET_S = 120.0


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def served(clone: Path) -> bool:
    """Whether the served API answers an authorised search as the demo GP system."""
    try:
        if requests.get("http://127.0.0.1:8080/health/ready", timeout=2).status_code != 200:
            return False
    except requests.RequestException:
        return False
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BASE_URL")}
    token = subprocess.run([str(clone / ".venv/bin/sharedcare"), "token", "--client", "demo-gp", "--key",
                            "var/clients/demo-gp.jwk"], cwd=clone, capture_output=True, text=True, check=False,
                           env=environment)
    if token.returncode != 0:
        return False
    answer = requests.get(f"{BASE}/Patient", params={"_summary": "count"}, timeout=10,
                          headers={"Authorization": f"Bearer {token.stdout.strip()}"})
    return answer.status_code == 200 and answer.json().get("total", 0) > 0


def make_demo(clone: Path) -> dict[str, float]:
    """Run `make demo` until the API answers; seconds from the start to each phase's end."""
    started = time.monotonic()
    marks: dict[str, float] = {}
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BASE_URL", "VIRTUAL_ENV")}
    process = subprocess.Popen(["make", "demo"], cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True, env=environment)

    def watch() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic() - started
            if line.startswith(("Generating", "The database at")) and "install" not in marks:
                marks["install"] = now
            if line.startswith(("The demo area is built", "The database at")):
                marks["demo"] = now
            if line.startswith("Serving FHIR R4"):
                marks["serve"] = now

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        while time.monotonic() - started < 900:
            if process.poll() is not None:
                raise SystemExit(f"make demo stopped with exit code {process.returncode}")
            if "serve" in marks and served(clone):
                marks["answer"] = time.monotonic() - started
                return marks
            time.sleep(0.5)
        raise SystemExit("make demo did not serve within 15 minutes")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def report(name: str, marks: dict[str, float]) -> None:
    install = marks.get("install", 0.0)
    demo = marks.get("demo", install)
    print(f"{name:34s} install {install:6.1f} s   demo build {demo - install:6.1f} s   "
          f"serve {marks['answer'] - demo:5.1f} s   total {marks['answer']:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the clone (its path is printed).")
    options = parser.parse_args()
    if not port_free(8080):
        raise SystemExit("127.0.0.1:8080 is in use: `make demo` serves there; stop that server first")
    folder = Path(tempfile.mkdtemp(prefix="demo-clone-"))
    clone = folder / "sharedcare"
    try:
        started = time.monotonic()
        subprocess.run(["git", "clone", "--quiet", str(PROJECT), str(clone)], check=True)
        cloned = time.monotonic() - started
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                                check=True).stdout.strip()
        print(f"clone of {commit} in {cloned:.1f} s into {clone}; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cores")
        fresh = make_demo(clone)
        report("make demo, fresh clone", fresh)
        again = make_demo(clone)
        report("make demo again (baseline)", again)
        total = cloned + fresh["answer"]
        print(f"fresh clone to a served API: {total:.1f} s, {total / TARGET_S:.2f} of the {TARGET_S:.0f} s target; "
              f"{fresh['answer'] / again['answer']:.1f} times the second `make demo`")
    finally:
        if options.keep:
            print(f"kept {clone}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
