"""Fixtures for the case-management tests: apps on their own databases holding the sample extracts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from loaders.load import Loader, LoadOptions
from loaders.sinks import InProcessSink
from server.api.model import FhirRequest, FhirResponse
from server.care.service import CareServices, care_of
from server.fhir.outcome import FhirError
from server.security.context import Caller
from tests.conftest import app_factory

TODAY = date(2026, 11, 2)  # a Monday, the month after the sample extracts
NHS = "https://fhir.nhs.uk/Id/nhs-number"
B = "https://sharedcare.example.org/fhir"
PEOPLE = {"jean": "9991000003", "arthur": "9991001379", "margaret": "9991004114", "david": "9991006850",
          "edith": "9991008225", "harold": "9991009590", "ivy": "9991010963"}


@pytest.fixture(scope="module")
def new_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Flask]]:
    """A factory of apps, each on its own empty database whose care clock reads TODAY."""

    def set_clock(app: Flask) -> None:
        care(app).clock = lambda: TODAY

    def wait_for_runs(app: Flask) -> None:
        runs = care(app).runs
        if runs is not None:
            runs.wait(60)

    with app_factory(tmp_path_factory, "caredb", set_clock, wait_for_runs) as make:
        yield make


def care(app: Flask) -> CareServices:
    return care_of(app.extensions["sharedcare"].services)


def load_samples(app: Flask, folder: Path, rejects: Path) -> None:
    for source in ("gp", "swift", "hospital"):
        sink = InProcessSink.from_app(app, source)
        report = Loader(sink, LoadOptions(progress=False, rejects=rejects)).load(source, folder / source)
        assert report.exit_code() == 0, report.render()


@pytest.fixture(scope="module")
def sample_app(new_app: Callable[[], Flask], sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The sample extracts loaded, not yet stratified."""
    app = new_app()
    load_samples(app, sample_dir, tmp_path_factory.mktemp("rejects"))
    return app


def call(app: Flask, verb: str, path: str, body: Any = None, /, **params: Any) -> FhirResponse:
    """A request through the FHIR API in-process (the body parsed when it is JSON text)."""
    api = app.extensions["sharedcare"]
    pairs = [(k, str(v)) for k, value in params.items() for v in (value if isinstance(value, list) else [value])]
    request = FhirRequest(method=verb, path=path, params=pairs, body=body, base_url="http://test/fhir")
    try:
        response = api.handle(request, Caller.system("test"))
    except FhirError as exc:
        return FhirResponse(exc.status, exc.outcome())
    if isinstance(response.body, str):
        response.body = orjson.loads(response.body)
    return response


def ok(response: FhirResponse, status: int = 200) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body)
    assert isinstance(response.body, dict)
    return response.body


def search(app: Flask, resource_type: str, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("_count", "500")
    bundle = ok(call(app, "GET", resource_type, **params))
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def patient_id(app: Flask, who: str) -> str:
    found = search(app, "Patient", identifier=f"{NHS}|{PEOPLE[who]}")
    assert len(found) == 1, found
    return found[0]["id"]


def assessments(app: Flask, who: str) -> dict[str, dict[str, Any]]:
    """The patient's current RiskAssessments by method code."""
    found = search(app, "RiskAssessment", patient=f"Patient/{patient_id(app, who)}")
    return {a["method"]["coding"][0]["code"]: a for a in found}


def tier(assessment: dict[str, Any]) -> str:
    return assessment["prediction"][0]["qualitativeRisk"]["coding"][0]["code"]


def score(assessment: dict[str, Any]) -> float:
    return assessment["prediction"][0]["extension"][0]["valueDecimal"]


def basis(app: Flask, assessment: dict[str, Any]) -> list[dict[str, Any]]:
    """The evidence an assessment points at, read back."""
    found = []
    for entry in assessment["basis"]:
        resource_type, resource_id = entry["reference"].split("/")
        found.append(ok(call(app, "GET", f"{resource_type}/{resource_id}")))
    return found


def case_manager(app: Flask, name: str = "Anne Khan", role: str = "community-matron",
                 phone: str = "01632 960100") -> str:
    """An organisation, a practitioner and their case-manager PractitionerRole; the role's reference."""
    org = ok(call(app, "POST", "Organization", {
        "resourceType": "Organization", "name": "Upton Community Health Services",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RY999"}]}), 201)
    family, given = name.split(" ")[-1], name.split(" ")[0]
    practitioner = ok(call(app, "POST", "Practitioner", {
        "resourceType": "Practitioner", "name": [{"family": family, "given": [given]}]}), 201)
    role_resource = ok(call(app, "POST", "PractitionerRole", {
        "resourceType": "PractitionerRole", "active": True,
        "practitioner": {"reference": f"Practitioner/{practitioner['id']}"},
        "organization": {"reference": f"Organization/{org['id']}"},
        "code": [{"coding": [{"system": f"{B}/CodeSystem/care-role", "code": role,
                              "display": role.replace("-", " ").capitalize()}]}],
        "telecom": [{"system": "phone", "value": phone, "use": "work"}]}), 201)
    return f"PractitionerRole/{role_resource['id']}"


def parameters(*parts: tuple[str, str, Any]) -> dict[str, Any]:
    """A Parameters body from (name, value kind, value) triples."""
    return {"resourceType": "Parameters",
            "parameter": [{"name": name, f"value{kind}": value} for name, kind, value in parts]}


def part(params: dict[str, Any], name: str) -> Any:
    """The value (or the sub-parts as a dict) of the first parameter with the name."""
    for entry in params.get("parameter", params.get("part", [])):
        if entry["name"] == name:
            if "part" in entry:
                return entry
            return next(v for k, v in entry.items() if k.startswith("value"))
    raise KeyError(name)


def parts(params: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in params.get("parameter", params.get("part", [])) if e["name"] == name]
