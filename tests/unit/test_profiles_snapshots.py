"""The committed snapshots are what tools/build_profiles.py generates from the differentials."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def builder():
    spec = importlib.util.spec_from_file_location("build_profiles", PROJECT / "tools" / "build_profiles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_snapshots_are_generated_from_the_differentials(shared_dir):
    tool = builder()
    definitions = tool.read_package(shared_dir)
    value_sets = tool.known_value_sets()
    files = sorted((PROJECT / "profiles" / "structuredefinitions").glob("*.json"))
    assert len(files) == 25
    for path in files:
        committed = json.loads(path.read_text(encoding="utf-8"))
        assert tool.check_bindings(committed, value_sets) == []
        rebuilt = tool.SnapshotBuilder(definitions, committed["url"]).build(
            committed["type"], committed["differential"]["element"])
        rebuilt[0]["id"] = rebuilt[0]["path"] = committed["type"]
        assert rebuilt == committed["snapshot"]["element"], path.name
        assert [e["id"] for e in committed["differential"]["element"]] == \
            [e["id"] for e in committed["snapshot"]["element"] if e["id"] in
             {d["id"] for d in committed["differential"]["element"]}], f"{path.name}: differential out of order"


def test_snapshot_unfolds_datatypes_and_adds_slices(shared_dir):
    patient = json.loads((PROJECT / "profiles" / "structuredefinitions" / "SCR-Patient.json").read_text())
    ids = [e["id"] for e in patient["snapshot"]["element"]]
    start = ids.index("Patient.identifier")
    assert ids[start + 1:start + 4] == ["Patient.identifier:nhsNumber", "Patient.identifier:nhsNumber.id",
                                        "Patient.identifier:nhsNumber.extension"]
    by_id = {e["id"]: e for e in patient["snapshot"]["element"]}
    assert by_id["Patient.identifier:nhsNumber.system"]["fixedUri"] == "https://fhir.nhs.uk/Id/nhs-number"
    assert by_id["Patient.identifier:nhsNumber.system"]["base"]["path"] == "Identifier.system"
    assert by_id["Patient.birthDate"]["min"] == 1
    assert "mapping" not in by_id["Patient"]


def test_an_unknown_element_is_refused(shared_dir):
    tool = builder()
    definitions = tool.read_package(shared_dir)
    with pytest.raises(ValueError, match="not an element"):
        tool.SnapshotBuilder(definitions, "x").build("Patient", [{"id": "Patient.nickname", "min": 1}])
