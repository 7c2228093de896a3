"""Every error class answers with its status and an OperationOutcome saying what and where."""

from __future__ import annotations

import orjson
import pytest
from flask import Flask

from server.app import create_app
from server.config import Settings
from server.store.migrate import upgrade
from tests.auth import authenticate_app
from tests.support import FHIR_JSON, assert_outcome, patient


def test_unknown_type_is_404(client):
    assert_outcome(client.get("/fhir/Spaceship/1"), 404, "not-supported", text="Spaceship")
    assert_outcome(client.post("/fhir/Spaceship", data=b"{}", content_type=FHIR_JSON), 404)


def test_r4_only_type_is_refused(client):
    body = {"resourceType": "MedicinalProduct", "id": "x"}
    response = client.put("/fhir/MedicinalProduct/x", data=orjson.dumps(body), content_type=FHIR_JSON)
    assert_outcome(response, 404, "not-supported", text="does not support")
    capability = client.get("/fhir/metadata").get_json()
    types = {r["type"] for r in capability["rest"][0]["resource"]}
    assert "MedicinalProduct" not in types and "CarePlan" in types
    assert capability["fhirVersion"] == "4.0.1"


def test_unknown_id_is_404(client):
    assert_outcome(client.get("/fhir/Patient/no-such-patient"), 404, "not-found")


def test_xml_is_refused(client):
    assert_outcome(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406, text="JSON")
    assert_outcome(client.get("/fhir/metadata?_format=xml"), 406, expression="_format")
    assert_outcome(client.post("/fhir/Patient", data=b"<Patient/>", content_type="application/fhir+xml"), 415,
                   text="JSON")
    assert_outcome(client.post("/fhir/Patient", data=b"x", content_type="text/plain"), 415)


def test_malformed_json_is_400(client):
    assert_outcome(client.post("/fhir/Patient", data=b'{"resourceType": "Patient",', content_type=FHIR_JSON),
                   400, "structure")
    assert_outcome(client.post("/fhir/Patient", data=b"[1, 2]", content_type=FHIR_JSON), 400)
    assert_outcome(client.post("/fhir/Patient", data=b"", content_type=FHIR_JSON), 400)


def test_type_mismatch_is_400(client):
    response = client.post("/fhir/Observation", data=orjson.dumps(patient()), content_type=FHIR_JSON)
    assert_outcome(response, 400, expression="resourceType")


def test_invalid_resource_names_the_element(client):
    bad = {**patient(), "birthDate": "1934-13-45", "gender": "bogus", "name": [{}]}
    body = assert_outcome(client.post("/fhir/Patient", data=orjson.dumps(bad), content_type=FHIR_JSON), 400)
    expressions = {e for issue in body["issue"] for e in issue.get("expression", [])}
    assert "Patient.birthDate" in expressions
    assert "Patient.name[0]" in expressions
    unknown_element = {**patient(), "colour": "blue"}
    assert_outcome(client.post("/fhir/Patient", data=orjson.dumps(unknown_element), content_type=FHIR_JSON), 400,
                   expression="Patient.colour")
    bad_code = {**patient(), "gender": "bogus"}
    assert_outcome(client.post("/fhir/Patient", data=orjson.dumps(bad_code), content_type=FHIR_JSON), 400,
                   "code-invalid", expression="Patient.gender")


def test_invalid_id_is_400(client):
    response = client.put("/fhir/Patient/bad id!", data=orjson.dumps({**patient(), "id": "bad id!"}),
                          content_type=FHIR_JSON)
    assert_outcome(response, 400, expression="Patient.id")


def test_method_not_allowed_is_405(client):
    assert_outcome(client.delete("/fhir/metadata"), 405)
    assert_outcome(client.put("/fhir/Patient/x/_history/1", data=b"{}", content_type=FHIR_JSON), 405)


def test_unknown_path_is_404(client):
    assert_outcome(client.get("/fhir/Patient/x/_history/1/extra/parts"), 404)
    assert_outcome(client.get("/fhir/$no-such-operation"), 404)


def test_search_errors(client):
    assert_outcome(client.get("/fhir/Patient?nonsense=1", headers={"Prefer": "handling=strict"}), 400,
                   expression="nonsense")
    lenient = client.get("/fhir/Patient?nonsense=1")
    assert lenient.status_code == 200
    assert "nonsense" not in lenient.get_json()["link"][0]["url"]
    assert_outcome(client.get("/fhir/Patient?birthdate=1934-99-99"), 400, "value")
    assert_outcome(client.get("/fhir/Patient?_count=abc"), 400)
    assert_outcome(client.get("/fhir/Patient?gender:bogus=x"), 400)


def test_request_size_limit_is_413(tmp_path):
    url = f"sqlite:///{tmp_path / 'small.db'}"
    upgrade(url)
    small = create_app(Settings.from_env({}, database_url=url, max_request_bytes=1000))
    assert isinstance(small, Flask)
    authenticate_app(small)
    big = orjson.dumps({**patient(), "text": {"status": "generated", "div": "<div>" + "x" * 5000 + "</div>"}})
    response = small.test_client().post("/fhir/Patient", data=big, content_type=FHIR_JSON)
    assert_outcome(response, 413, "too-costly")
    small.extensions["sharedcare"].services.database.dispose()


@pytest.mark.parametrize("path", [
    "/fhir/Patient/%00", "/fhir/Patient?_id=%27%3B%20DROP%20TABLE%20resources%3B--",
    "/fhir/Patient?name=" + "x" * 5000, "/fhir/Patient?_sort=nonsense", "/fhir/Patient?_include=Nope:x",
    "/fhir/Patient?birthdate=ge2020-02-30", "/fhir/Observation?value-quantity=abc",
    "/fhir/Observation?code-value-quantity=a", "/fhir/Patient?_has:Observation", "/fhir/_history?_since=yesterday",
    "/fhir/Patient?general-practitioner.name.x.y.z.a.b.c.d=1", "/fhir/Patient?_count=99999999999999999999",
    "/fhir/Patient?_summary=maybe", "/fhir/Patient?_total=lots",
])
def test_hostile_input_never_500(client, path):
    response = client.get(path)
    assert response.status_code in (200, 400, 404), (path, response.data[:300])
    if response.status_code != 200:
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_control_characters_are_refused(client):
    body = {**patient(), "name": [{"family": "Har\u0000dy"}]}
    assert_outcome(client.post("/fhir/Patient", data=orjson.dumps(body), content_type=FHIR_JSON), 400,
                   expression="Patient.name[0].family")
    assert_outcome(client.get("/fhir/Patient?name=a%00b"), 400)


def test_an_operation_at_no_operation_level_names_the_levels_not_a_python_value(client):
    body = assert_outcome(client.get("/fhir/Patient/1/Observation/$lastn"), 404, code="not-found",
                          text="operations run at system")
    assert "None" not in body["issue"][0]["diagnostics"]
    assert "/Patient/1/Observation/$lastn" in body["issue"][0]["diagnostics"]


def bundle(kind: str, *entries: dict) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": kind, "entry": list(entries)})


def patch_operation(*parts: dict) -> bytes:
    return orjson.dumps({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": list(parts)}]})


PATIENT_ENTRY = {"request": {"method": "POST", "url": "Patient"}}
HOSTILE_BODIES = [  # (method, path, content type, body, status, expression the outcome names)
    ("POST", "", FHIR_JSON, bundle("transaction", {"request": {"method": {"a": 1}, "url": "Patient"}}), 400,
     "Bundle.entry[0].request"),
    ("POST", "", FHIR_JSON, bundle("batch", {"request": {"method": ["GET"], "url": "Patient"}}), 400,
     "Bundle.entry[0].request"),
    ("POST", "", FHIR_JSON, bundle("transaction", {**PATIENT_ENTRY, "resource": 5}), 400, "Bundle.entry[0].resource"),
    ("POST", "", FHIR_JSON, bundle("batch", {**PATIENT_ENTRY, "resource": [patient()]}), 400,
     "Bundle.entry[0].resource"),
    ("POST", "", FHIR_JSON, bundle("transaction", {"request": {"method": "GET", "url": "http://[::1/Patient"}}), 400,
     "Bundle.entry[0].request.url"),
    ("POST", "", FHIR_JSON, bundle("transaction", {**PATIENT_ENTRY, "resource": {
        **patient(), "managingOrganization": {"reference": "http://[::1/Organization?identifier=x"}}}), 400,
     "Bundle.entry[0]"),
    ("POST", "", FHIR_JSON, bundle("transaction", {"request": {"method": "PUT", "url": "Patient?identifier=x|y"},
                                                   "resource": {**patient(), "id": ["a"]}}), 400,
     "Bundle.entry[0].resource.id"),
    ("POST", "", FHIR_JSON, bundle("transaction", {"request": {"method": "PUT", "url": "Patient?identifier=x|y"},
                                                   "resource": {**patient(), "id": 5}}), 400,
     "Bundle.entry[0].resource.id"),
    ("PATCH", "Patient/{id}", "application/json-patch+json", b'[{"op":"add","path":"/a~2b","value":1}]', 400, None),
    ("PATCH", "Patient/{id}", "application/json-patch+json", b'[{"op":"add","path":"a","value":1}]', 400, None),
    ("PATCH", "Patient?_id={id}", "application/json-patch+json", b'[{"op":"add","path":"/a~2b","value":1}]', 400,
     None),
    ("PATCH", "Patient/{id}", FHIR_JSON, patch_operation({"name": ["type"], "valueCode": "add"}), 400,
     "Parameters.parameter[0]"),
    ("PATCH", "Patient/{id}", FHIR_JSON, orjson.dumps({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": 5}]}), 400, "Parameters.parameter[0].part"),
    ("PATCH", "Patient/{id}", FHIR_JSON, patch_operation({"name": "type", "valueCode": "delete"},
                                                         {"name": "path", "valueString": "Patient"}), 422,
     "Parameters.parameter[0]"),
    *[("POST", operation, FHIR_JSON, orjson.dumps({"resourceType": "Parameters", "parameter": listed}), 400,
       expression)
      for operation in ("Patient/$validate", "ValueSet/$expand", "CodeSystem/$lookup", "$case-finding", "$outcomes")
      for listed, expression in ((5, "Parameters.parameter"), ([5], "Parameters.parameter[0]"),
                                 ([None], "Parameters.parameter[0]"), ("x", "Parameters.parameter"))],
    ("GET", "$outcomes?periodEnd=0001-01-01", None, None, 400, "periodEnd"),
    ("GET", "$outcomes?periodStart=0001-01-01", None, None, 400, "periodStart"),
]


@pytest.mark.parametrize(("method", "path", "content_type", "body", "status", "expression"), HOSTILE_BODIES)
def test_hostile_bodies_are_refused_with_an_outcome_never_500(client, method, path, content_type, body, status,
                                                              expression):
    """Bodies whose parts have the wrong JSON type (a method or a resource not an object, a parameter list that is
    a number), URLs that do not parse, patches with bad pointers or a path to the resource itself, and periods
    that reach before year 1 each get their 4xx and an OperationOutcome naming where, and change nothing."""
    created = client.post("/fhir/Patient", data=orjson.dumps(patient()), content_type=FHIR_JSON)
    assert created.status_code == 201, created.data[:300]
    target = created.get_json()["id"]
    before = client.get(f"/fhir/Patient/{target}").get_json()["meta"]["versionId"]
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.open(f"/fhir/{path.format(id=target)}", method=method, data=body, headers=headers)
    assert_outcome(response, status, expression=expression)
    assert client.get(f"/fhir/Patient/{target}").get_json()["meta"]["versionId"] == before
