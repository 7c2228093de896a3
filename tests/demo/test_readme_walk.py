"""The README's walk ("Ten minutes with the shared record"): every command, as written, against a fresh demo."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import PROJECT
from tests.demo.conftest import Demo

README_BASE = "http://127.0.0.1:8080/fhir"
STEP = re.compile(r"```sh\n(?P<command>.*?)```\s*```text\n(?P<answer>.*?)```", re.S)


def walk() -> list[tuple[str, list[str]]]:
    """(command, lines of the answer shown) of each step of the README's walk, in order."""
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Ten minutes with the shared record", 1)[1].split("\n## ", 1)[0]
    return [(m["command"], m["answer"].strip().splitlines()) for m in STEP.finditer(section)]


def test_the_walk_has_a_step_for_each_user() -> None:
    commands = " ".join(command for command, _ in walk())
    for client in ("demo-gp", "demo-council", "demo-hospital", "demo-case-management", "demo-integration"):
        assert f"--client {client} " in commands
    for operation in ("$case-status", "$case-finding", "$screen", "$enrol", "$outcomes"):
        assert operation in commands


@pytest.mark.parametrize("step", range(len(walk())), ids=lambda i: f"step{i + 1}")
def test_each_step_of_the_walk_answers_what_the_readme_shows(demo: Demo, step: int) -> None:
    command, shown = walk()[step]
    script = "set -euo pipefail\n" + command.replace(README_BASE, demo.base)
    done = subprocess.run(["bash", "-c", script], cwd=demo.folder, env=demo.environment(), text=True,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)  # curl --fail-with-body: 2xx only
    answer = done.stdout.splitlines()
    at = 0
    for line in shown:
        prefix = line.removesuffix("...").rstrip() if line.endswith("...") else None
        while at < len(answer) and not (answer[at].startswith(prefix) if prefix is not None else answer[at] == line):
            at += 1
        assert at < len(answer), f"the README shows {line!r}; the command answered:\n{done.stdout}"
        at += 1
