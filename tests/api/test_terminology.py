"""Terminology operations over HTTP: $expand, $lookup, $validate-code and $translate, GET and POST."""

from __future__ import annotations

import orjson
import pytest

from tests.support import FHIR_JSON, assert_outcome

B = "https://sharedcare.example.org/fhir"
VS = f"{B}/ValueSet/"
CS = f"{B}/CodeSystem/"
UKCORE = "https://fhir.hl7.org.uk/CodeSystem/"


def get(client, path: str, **params):
    return client.get(f"/fhir/{path}", query_string=params)


def post(client, path: str, **values):
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": name, **({"valueCoding": value} if isinstance(value, dict) else
                          {"valueInteger": value} if isinstance(value, int) else {"valueString": value})}
        for name, value in values.items()]}
    return client.post(f"/fhir/{path}", data=orjson.dumps(parameters), content_type=FHIR_JSON)


def values(parameters: dict) -> dict:
    return {p["name"]: next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
            for p in parameters["parameter"]}


# ------------------------------------------------------------------------------ $expand


@pytest.mark.parametrize("method", [get, post])
def test_expand_by_url(client, method):
    response = method(client, "ValueSet/$expand", url=VS + "cld-delivery-mechanism")
    assert response.status_code == 200
    body = response.get_json()
    assert body["resourceType"] == "ValueSet" and body["url"] == VS + "cld-delivery-mechanism"
    assert body["expansion"]["total"] == 3
    assert [c["code"] for c in body["expansion"]["contains"]] == [
        "Direct Payment", "CASSR Managed Personal Budget", "CASSR Commissioned Support"]
    assert all(c["system"] == CS + "cld-delivery-mechanism" for c in body["expansion"]["contains"])


def test_expand_with_filter_count_and_offset(client):
    body = get(client, "ValueSet/$expand", url=VS + "cld-service-component", filter="term").get_json()
    assert [c["code"] for c in body["expansion"]["contains"]] == [
        "Short Term Nursing Care", "Long Term Nursing Care", "Short Term Residential Care",
        "Long Term Residential Care"]
    page = get(client, "ValueSet/$expand", url=VS + "cld-service-component", filter="term", count="2",
               offset="1").get_json()
    assert page["expansion"]["total"] == 4 and page["expansion"]["offset"] == 1
    assert [c["code"] for c in page["expansion"]["contains"]] == ["Long Term Nursing Care",
                                                                 "Short Term Residential Care"]
    assert get(client, "ValueSet/$expand", url=VS + "risk-tier", filter="zzz").get_json()["expansion"]["total"] == 0


def test_expand_by_instance_id(client):
    body = get(client, "ValueSet/admission-method-england/$expand", filter="emergency admission").get_json()
    assert [c["code"] for c in body["expansion"]["contains"]] == ["21", "22", "23", "24", "25", "2A", "2B", "2C",
                                                                 "2D", "28"]


def test_expand_errors(client):
    assert_outcome(get(client, "ValueSet/$expand"), 400, code="required")
    assert_outcome(get(client, "ValueSet/$expand", url=VS + "nope"), 404, code="not-found")
    assert_outcome(get(client, "ValueSet/$expand", url=VS + "condition-code"), 422, code="too-costly")
    assert_outcome(get(client, "ValueSet/$expand", url=VS + "risk-tier", count="x"), 400)
    assert_outcome(get(client, "ValueSet/no-such-set/$expand"), 404)
    assert_outcome(get(client, "CodeSystem/$expand", url=VS + "risk-tier"), 404)


# ------------------------------------------------------------------------------ $lookup


@pytest.mark.parametrize("method", [get, post])
def test_lookup(client, method):
    response = method(client, "CodeSystem/$lookup", system=UKCORE + "UKCore-DischargeDestinationEngland", code="54")
    assert response.status_code == 200
    found = values(response.get_json())
    assert found["name"] == "UKCoreDischargeDestinationEngland"
    assert found["display"] == "NHS run Care Home"
    assert found["version"] == "1.0.0"


def test_lookup_by_coding_and_definition(client):
    response = post(client, "CodeSystem/$lookup", coding={"system": CS + "risk-tier", "code": "efi-moderate"})
    found = values(response.get_json())
    assert found["display"] == "eFI: moderate frailty"
    assert {"name": "value", "valueString": "electronic Frailty Index score above 0.24, up to 0.36."} in \
        found["property"]


def test_lookup_errors(client):
    assert_outcome(get(client, "CodeSystem/$lookup", code="54"), 400, code="required")
    assert_outcome(get(client, "CodeSystem/$lookup", system=CS + "risk-tier"), 400, code="required")
    assert_outcome(get(client, "CodeSystem/$lookup", system=CS + "risk-tier", code="nope"), 404)
    assert_outcome(get(client, "CodeSystem/$lookup", system="http://snomed.info/sct", code="44054006"), 404,
                   text="checked for form only")


# ------------------------------------------------------------------------------ $validate-code


@pytest.mark.parametrize("method", [get, post])
def test_validate_code(client, method):
    good = values(method(client, "ValueSet/$validate-code", url=VS + "cld-event-type",
                         system=CS + "cld-event-type", code="Review").get_json())
    assert good == {"result": True, "display": "Review"}
    bad = values(method(client, "ValueSet/$validate-code", url=VS + "cld-event-type",
                        system=CS + "cld-event-type", code="Visit").get_json())
    assert bad["result"] is False and "Visit" in bad["message"]


def test_validate_code_display_form_and_instance(client):
    wrong = values(get(client, "ValueSet/$validate-code", url=VS + "gp-sex", system=CS + "gp-sex", code="F",
                       display="Woman").get_json())
    assert wrong["result"] is False and "Female" in wrong["message"]
    snomed = values(get(client, "ValueSet/$validate-code", url=VS + "condition-code",
                        system="http://snomed.info/sct", code="84114007").get_json())
    assert snomed["result"] is True and "form" in snomed["message"]
    bad_form = values(get(client, "ValueSet/$validate-code", url=VS + "condition-code",
                          system="http://hl7.org/fhir/sid/icd-10", code="N39.0.0").get_json())
    assert bad_form["result"] is False
    by_id = values(get(client, "ValueSet/risk-tier/$validate-code", system=CS + "risk-tier", code="low").get_json())
    assert by_id["result"] is True
    concept = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": VS + "risk-tier"},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": "http://example.org", "code": "x"}, {"system": CS + "risk-tier", "code": "high"}]}}]}
    response = client.post("/fhir/ValueSet/$validate-code", data=orjson.dumps(concept), content_type=FHIR_JSON)
    assert values(response.get_json())["result"] is True


def test_validate_code_errors(client):
    assert_outcome(get(client, "ValueSet/$validate-code", system=CS + "gp-sex", code="F"), 400, code="required")
    assert_outcome(get(client, "ValueSet/$validate-code", url=VS + "gp-sex", system=CS + "gp-sex"), 400)
    assert_outcome(get(client, "ValueSet/$validate-code", url=VS + "nope", code="F"), 404)


# ------------------------------------------------------------------------------ $translate


@pytest.mark.parametrize("method", [get, post])
def test_translate_sex(client, method):
    response = method(client, "ConceptMap/$translate", url=f"{B}/ConceptMap/gp-sex-to-administrative-gender",
                      system=CS + "gp-sex", code="U")
    found = values(response.get_json())
    assert found["result"] is True
    match = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in found["match"]}
    assert match == {"equivalence": "equivalent", "concept": {
        "system": "http://hl7.org/fhir/administrative-gender", "code": "unknown", "display": "unknown"},
        "source": f"{B}/ConceptMap/gp-sex-to-administrative-gender"}


def test_translate_accommodation_by_source_and_instance(client):
    found = values(get(client, "ConceptMap/$translate", source=VS + "cld-accommodation-status",
                       system=CS + "cld-accommodation-status", code="Registered care home").get_json())
    assert found["result"] is True
    assert found["match"][1]["valueCoding"]["code"] == "394923006"
    unmapped = values(get(client, "ConceptMap/cld-accommodation-to-residence-finding/$translate",
                          system=CS + "cld-accommodation-status", code="Refuge").get_json())
    assert unmapped["result"] is False and "No translation" in unmapped["message"]


def test_translate_errors(client):
    assert_outcome(get(client, "ConceptMap/$translate", system=CS + "gp-sex", code="U"), 400, code="required")
    assert_outcome(get(client, "ConceptMap/$translate", url=f"{B}/ConceptMap/nope", system=CS + "gp-sex",
                       code="U"), 404)
    assert_outcome(get(client, "ConceptMap/$translate", url=f"{B}/ConceptMap/gp-sex-to-administrative-gender",
                       code="U"), 400, code="required")


def test_operations_take_a_parameters_body_only(client):
    response = client.post("/fhir/ValueSet/$expand", data=orjson.dumps({"resourceType": "Patient"}),
                           content_type=FHIR_JSON)
    assert_outcome(response, 400)
