"""FHIRPath Patch as R4 fhirpatch.html defines it: the page's examples, each operation, and its error rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support import FHIR_JSON, assert_outcome, patient


def operation(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    """One `operation` parameter: `name`, `index`, `source`, `destination` as given; `value` as a part."""
    listed: list[dict[str, Any]] = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for key, value in parts.items():
        if key == "name":
            listed.append({"name": "name", "valueString": value})
        elif key in ("index", "source", "destination"):
            listed.append({"name": key, "valueInteger": value})
        else:
            listed.append({"name": "value", **value})
    return {"name": "operation", "part": listed}


def parameters(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def create(client, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/fhir/{resource['resourceType']}", data=orjson.dumps(resource), content_type=FHIR_JSON)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def patch(client, stored: dict[str, Any], document: dict[str, Any]):
    return client.patch(f"/fhir/{stored['resourceType']}/{stored['id']}", data=orjson.dumps(document),
                        content_type=FHIR_JSON)


def content(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def test_the_specification_example_adds_birth_date_at_the_resource_root(client):
    """fhirpatch.html: add, path `Patient`, name `birthDate`, valueDate 1930-01-01."""
    stored = create(client, {k: v for k, v in patient().items() if k != "birthDate"})
    response = patch(client, stored, parameters(
        operation("add", "Patient", name="birthDate", value={"valueDate": "1930-01-01"})))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["birthDate"] == "1930-01-01"
    assert response.get_json()["meta"]["versionId"] == "2"


def test_the_specification_example_adds_an_anonymous_element_from_parts(client):
    """fhirpatch.html: add, path `Patient`, name `contact`, a value made of parts (`name`, a HumanName)."""
    stored = create(client, patient())
    response = patch(client, stored, parameters(operation("add", "Patient", name="contact", value={
        "part": [{"name": "name", "valueHumanName": {"text": "a name"}}]})))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["contact"] == [{"name": {"text": "a name"}}]


def test_insert_delete_replace_and_move_as_the_operations_table_says(client):
    stored = create(client, patient(identifier=[{"system": "https://example.org/a", "value": "1"},
                                                {"system": "https://example.org/b", "value": "2"}]))
    response = patch(client, stored, parameters(
        operation("insert", "Patient.identifier", index=1,
                  value={"valueIdentifier": {"system": "https://example.org/c", "value": "3"}}),
        operation("replace", "Patient.name[0].given[0]", value={"valueString": "Joan"}),
        operation("delete", "Patient.identifier.where(system = 'https://example.org/b')"),
        operation("move", "Patient.identifier", source=0, destination=1),
        operation("delete", "Patient.telecom"),  # nothing there: delete is "if found"
    ))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [i["value"] for i in body["identifier"]] == ["3", "1"]
    assert body["name"][0]["given"] == ["Joan"]


def test_add_appends_to_a_repeating_element_and_a_choice_takes_its_type(client):
    stored = create(client, patient())
    response = patch(client, stored, parameters(
        operation("add", "Patient", name="identifier",
                  value={"valueIdentifier": {"system": "https://example.org/x", "value": "9"}}),
        operation("add", "Patient", name="deceased", value={"valueBoolean": False})))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["identifier"][-1]["value"] == "9" and len(body["identifier"]) == 2
    assert body["deceasedBoolean"] is False


@pytest.mark.parametrize(("document", "status", "text"), [
    (parameters(operation("replace", "Patient.telecom", value={"valueString": "x"})), 422, "matches no element"),
    (parameters(operation("add", "Patient", name="birthDate", value={"valueDate": "1950-01-01"})), 422,
     "already exists"),
    (parameters(operation("add", "Patient", name="birthDate", value={"valueString": "1950"})), 422,
     "birthDate takes date, not String"),
    (parameters(operation("add", "Patient", name="nickname", value={"valueString": "x"})), 422,
     "no element 'nickname'"),
    (parameters(operation("insert", "Patient.identifier", index=5,
                          value={"valueIdentifier": {"value": "1"}})), 422, "beyond the end of the list"),
    (parameters(operation("delete", "Patient.name.given")), 422, "only a single element can be deleted"),
    (parameters(operation("move", "Patient.identifier", source=0, destination=3)), 422, "must be indexes"),
    (parameters(operation("replace", "Observation.status", value={"valueCode": "final"})), 422,
     "must start with Patient"),
    (parameters(operation("insert", "Patient.identifier", value={"valueIdentifier": {"value": "1"}})), 400,
     "index is missing"),
    (parameters(operation("add", "Patient", value={"valueDate": "1950-01-01"})), 400, "name is missing"),
    (parameters(operation("replace", "Patient.name.where(use = official)", value={"valueString": "x"})), 400,
     "is not an element name"),
    ({"resourceType": "Parameters"}, 400, "at least one operation"),
])
def test_an_operation_that_cannot_apply_is_refused_and_nothing_is_written(client, document, status, text):
    stored = create(client, patient(name=[{"family": "Hardy", "given": ["Jean", "Ann"]}]))
    body = assert_outcome(patch(client, stored, document), status,
                          code="processing" if status == 422 else "invalid", text=text)
    if document.get("parameter"):
        assert any("Parameters.parameter[0]" in i.get("expression", []) for i in body["issue"]), body
    after = client.get(f"/fhir/Patient/{stored['id']}").get_json()
    assert after["meta"]["versionId"] == "1" and content(after) == content(stored)
