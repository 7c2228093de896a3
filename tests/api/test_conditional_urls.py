"""URLs and conditional criteria: broken percent-encoding, empty criteria and a create with search parameters are
refused; every spelling of one criterion matches the same resources in every kind of conditional request."""

from __future__ import annotations

import orjson
import pytest

from tests.support import FHIR_JSON, assert_outcome, patient, unique

NHS = "https://fhir.nhs.uk/Id/nhs-number"
SPELLINGS = ("identifier={system}|{value}", "identifier={encoded_system}%7C{value}", "identifier={system}%7C{value}")


def spell(form: str, system: str, value: str) -> str:
    encoded = system.replace(":", "%3A").replace("/", "%2F")
    return form.format(system=system, encoded_system=encoded, value=value)


def count(client, family: str) -> int:
    return client.get(f"/fhir/Patient?family={family}&_summary=count").get_json()["total"]


def create(client, resource: dict, **headers: str):
    return client.post("/fhir/Patient", data=orjson.dumps(resource), content_type=FHIR_JSON, headers=headers)


# ----------------------------------------------------------------------------- broken percent-encoding


@pytest.mark.parametrize("url", ["/fhir/Patient?identifier=%%%", "/fhir/Patient?name=a%2", "/fhir/Patient?family=%ZZ",
                                 "/fhir/Patient?family=%C3%28", "/fhir/Patient/abc%G1"])
def test_broken_percent_encoding_in_the_url_is_a_400(client, url):
    body = assert_outcome(client.get(url), 400, code="value", text="percent-encoding")
    assert body["issue"][0]["diagnostics"].startswith("The URL's")


def test_broken_percent_encoding_in_if_none_exist_writes_nothing(client):
    family = unique("Broken")
    body = assert_outcome(create(client, patient(name=[{"family": family}]), **{"If-None-Exist": "identifier=%%%"}),
                          400, code="value", text="If-None-Exist")
    assert "'%%%'" in body["issue"][0]["diagnostics"]
    assert count(client, family) == 0


def test_broken_percent_encoding_in_a_transaction_entry_writes_nothing(client):
    family = unique("BrokenTx")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(name=[{"family": family}]), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(name=[{"family": family}]),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=a%2"}}]}
    assert_outcome(client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON), 400, code="value",
                   expression="Bundle.entry[1].request.ifNoneExist")
    bundle["entry"][1]["request"] = {"method": "PUT", "url": "Patient?identifier=%zz"}
    assert_outcome(client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON), 400, code="value",
                   expression="Bundle.entry[1].request.url")
    assert count(client, family) == 0


# ----------------------------------------------------------------------------- empty criteria


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("query", ["identifier=", "identifier=&_format=json", "_format=json", "identifier=%20"])
def test_conditional_writes_with_empty_criteria_are_a_400(client, method, query):
    family = unique("Empty")
    before = client.get("/fhir/Patient?_summary=count").get_json()["total"]
    body = patient(name=[{"family": family}])
    data, content_type = orjson.dumps(body), FHIR_JSON
    if method == "PATCH":
        data = orjson.dumps([{"op": "replace", "path": "/gender", "value": "male"}])
        content_type = "application/json-patch+json"
    response = client.open(f"/fhir/Patient?{query}", method=method, data=data, content_type=content_type)
    assert_outcome(response, 400, code="invalid", text="no search criteria")
    assert count(client, family) == 0
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == before


def test_if_none_exist_with_empty_criteria_is_a_400(client):
    family = unique("EmptyHeader")
    assert_outcome(create(client, patient(name=[{"family": family}]), **{"If-None-Exist": "identifier="}), 400,
                   text="no search criteria")
    assert count(client, family) == 0


# ----------------------------------------------------------------------------- create with search parameters


def test_a_create_with_search_parameters_says_to_use_if_none_exist(client):
    family = unique("Query")
    number = unique("nhs")
    response = client.post(f"/fhir/Patient?identifier={NHS}|{number}", data=orjson.dumps(
        patient(number, name=[{"family": family}])), content_type=FHIR_JSON)
    body = assert_outcome(response, 400, code="not-supported", text="If-None-Exist")
    assert "identifier" in body["issue"][0]["diagnostics"]
    assert count(client, family) == 0
    assert client.post("/fhir/Patient?_format=json", data=orjson.dumps(patient(name=[{"family": family}])),
                       content_type=FHIR_JSON).status_code == 201  # formatting parameters are not search ones


# ----------------------------------------------------------------------------- canonical criteria


def test_every_spelling_of_a_criterion_finds_the_same_resource(client):
    system, number, family = "http://x.example.org/ids", unique("v"), unique("Spelt")
    resource = patient(name=[{"family": family}], identifier=[{"system": system, "value": number}])
    first = create(client, resource, **{"If-None-Exist": spell(SPELLINGS[0], system, number)})
    assert first.status_code == 201
    again = create(client, resource, **{"If-None-Exist": spell(SPELLINGS[1], system, number)})
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    updated = client.put(f"/fhir/Patient?{spell(SPELLINGS[2], system, number)}",
                         data=orjson.dumps({**resource, "gender": "male"}), content_type=FHIR_JSON)
    assert updated.status_code == 200 and updated.get_json()["id"] == first.get_json()["id"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333", "resource": resource,
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": spell(SPELLINGS[2], system, number)}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": family},
                      "subject": {"reference": f"Patient?{spell(SPELLINGS[1], system, number)}"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    response = client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["entry"][0]["response"]["status"].startswith("200")
    observation = client.get(f"/fhir/Observation?code:text={family}").get_json()["entry"][0]["resource"]
    assert observation["subject"]["reference"] == f"Patient/{first.get_json()['id']}"
    assert count(client, family) == 1


def test_a_criterion_matching_several_names_them_in_canonical_form(client):
    system, number, family = "http://y.example.org/ids", unique("v"), unique("Twice")
    for _ in range(2):
        assert create(client, patient(name=[{"family": family}],
                                      identifier=[{"system": system, "value": number}])).status_code == 201
    response = create(client, patient(name=[{"family": family}]),
                      **{"If-None-Exist": spell(SPELLINGS[1], system, number)})
    assert_outcome(response, 412, text=f"Patient?identifier={system}|{number}")
    assert count(client, family) == 2
