"""An absent shared data folder stops the test run with a message naming it, instead of skipping tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.shared import PROJECT

NEEDS_FOLDER = "tests/unit/test_bindings.py"  # some of its tests read the HL7 examples, the others need nothing


def run_pytest(shared: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "SHARED_DIR": str(shared)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           *arguments], cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=120)


def test_an_absent_folder_stops_the_run_naming_it(tmp_path: Path) -> None:
    absent = tmp_path / "no-such-shared"
    answer = run_pytest(absent, NEEDS_FOLDER)
    assert answer.returncode == 4, answer.stdout + answer.stderr
    output = answer.stdout + answer.stderr
    assert f"The shared data folder {absent} (SHARED_DIR, default ../shared) is absent" in output
    assert "test_vendored_bindings_match_the_generator" in output and "make test SHARED=" in output


def test_the_tests_that_need_nothing_still_run_without_it(tmp_path: Path) -> None:
    answer = run_pytest(tmp_path / "no-such-shared", NEEDS_FOLDER, "-m", "not shared")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "test_vendored_bindings_match_the_generator" not in answer.stdout
    assert "test_bindings.py::" in answer.stdout and "deselected" in answer.stdout


def test_a_present_folder_selects_every_test(shared_dir: Path) -> None:
    answer = run_pytest(shared_dir, NEEDS_FOLDER)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "test_vendored_bindings_match_the_generator" in answer.stdout
