"""Create, read, vread, update, delete, patch and conditional interactions over HTTP."""

from __future__ import annotations

import base64

import orjson

from tests.support import FHIR_JSON, assert_outcome, patient, unique


def post(client, resource, **headers):
    return client.post(f"/fhir/{resource['resourceType']}", data=orjson.dumps(resource),
                       content_type=FHIR_JSON, headers=headers)


def put(client, resource, **headers):
    return client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=orjson.dumps(resource),
                      content_type=FHIR_JSON, headers=headers)


def test_create_assigns_id_and_version(client):
    response = post(client, {**patient(), "id": "client-chosen"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert "GMT" in response.headers["Last-Modified"]
    assert response.headers["Content-Type"].startswith("application/fhir+json")


def test_read_serves_stored_json_and_vread(client):
    created = post(client, patient()).get_json()
    read = client.get(f"/fhir/Patient/{created['id']}")
    assert read.status_code == 200
    assert read.get_json() == created
    assert read.headers["ETag"] == 'W/"1"'
    vread = client.get(f"/fhir/Patient/{created['id']}/_history/1")
    assert vread.get_json() == created
    assert_outcome(client.get(f"/fhir/Patient/{created['id']}/_history/9"), 404, "not-found")


def test_update_versions_and_history(client):
    created = post(client, patient()).get_json()
    changed = {**created, "gender": "other"}
    updated = put(client, changed)
    assert updated.status_code == 200
    assert updated.get_json()["meta"]["versionId"] == "2"
    history = client.get(f"/fhir/Patient/{created['id']}/_history").get_json()
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert history["entry"][1]["request"] == {"method": "POST", "url": "Patient"}
    assert history["entry"][0]["response"]["etag"] == 'W/"2"'


def test_update_with_same_content_makes_no_version(client):
    created = post(client, patient()).get_json()
    again = put(client, created)
    assert again.status_code == 200
    assert again.get_json()["meta"]["versionId"] == "1"


def test_update_as_create_with_client_id(client):
    resource_id = unique("pat")
    response = put(client, {**patient(), "id": resource_id})
    assert response.status_code == 201
    assert response.get_json()["id"] == resource_id


def test_body_id_must_match_url(client):
    response = client.put("/fhir/Patient/abc", data=orjson.dumps({**patient(), "id": "xyz"}),
                          content_type=FHIR_JSON)
    assert_outcome(response, 400, expression="Patient.id")
    missing = client.put("/fhir/Patient/abc", data=orjson.dumps(patient()), content_type=FHIR_JSON)
    assert_outcome(missing, 400, expression="Patient.id")


def test_delete_then_gone_and_history_keeps_it(client):
    created = post(client, patient()).get_json()
    deleted = client.delete(f"/fhir/Patient/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.get_json()["resourceType"] == "OperationOutcome"
    assert_outcome(client.get(f"/fhir/Patient/{created['id']}"), 410, "deleted")
    history = client.get(f"/fhir/Patient/{created['id']}/_history").get_json()
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]
    assert history["entry"][0]["response"]["etag"] == 'W/"2"'
    # deleting again changes nothing; updating brings it back as version 3
    assert client.delete(f"/fhir/Patient/{created['id']}", headers={"Prefer": "return=minimal"}).status_code == 204
    revived = put(client, created)
    assert revived.status_code == 201
    assert revived.get_json()["meta"]["versionId"] == "3"


def test_if_match(client):
    created = post(client, patient()).get_json()
    stale = put(client, {**created, "gender": "male"}, **{"If-Match": 'W/"7"'})
    assert_outcome(stale, 412)
    fresh = put(client, {**created, "gender": "male"}, **{"If-Match": 'W/"1"'})
    assert fresh.status_code == 200
    assert_outcome(client.delete(f"/fhir/Patient/{created['id']}", headers={"If-Match": 'W/"1"'}), 412)


def test_if_none_match_and_if_modified_since_give_304(client):
    created = post(client, patient())
    location = created.headers["Location"].split("/fhir/")[1].split("/_history")[0]
    assert client.get(f"/fhir/{location}", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    later = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert client.get(f"/fhir/{location}", headers={"If-Modified-Since": later}).status_code == 304
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(f"/fhir/{location}", headers={"If-Modified-Since": earlier}).status_code == 200


def test_prefer_return(client):
    minimal = post(client, patient(), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.data == b""
    assert minimal.headers["Location"]
    outcome = post(client, patient(), Prefer="return=OperationOutcome")
    assert outcome.get_json()["resourceType"] == "OperationOutcome"
    assert_outcome(post(client, patient(), Prefer="return=everything"), 400)


def test_conditional_create(client):
    number = unique("nhs")
    first = post(client, patient(number), **{"If-None-Exist": f"identifier=https://fhir.nhs.uk/Id/nhs-number|{number}"})
    assert first.status_code == 201
    second = post(client, patient(number), **{"If-None-Exist": f"identifier=https://fhir.nhs.uk/Id/nhs-number|{number}"})
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    post(client, patient(number))
    third = post(client, patient(number), **{"If-None-Exist": f"identifier={number}"})
    assert_outcome(third, 412)


def test_conditional_update_and_delete(client):
    number = unique("nhs")
    query = f"identifier=https://fhir.nhs.uk/Id/nhs-number|{number}"
    created = client.put(f"/fhir/Patient?{query}", data=orjson.dumps(patient(number)), content_type=FHIR_JSON)
    assert created.status_code == 201
    resource_id = created.get_json()["id"]
    updated = client.put(f"/fhir/Patient?{query}", data=orjson.dumps(patient(number, gender="male")),
                         content_type=FHIR_JSON)
    assert updated.status_code == 200
    assert updated.get_json()["id"] == resource_id
    assert updated.get_json()["meta"]["versionId"] == "2"
    deleted = client.delete(f"/fhir/Patient?{query}")
    assert deleted.status_code == 200
    assert client.get(f"/fhir/Patient/{resource_id}").status_code == 410
    unknown = client.put("/fhir/Patient?nonsense=1", data=orjson.dumps(patient()), content_type=FHIR_JSON)
    assert_outcome(unknown, 400, expression="nonsense")


def test_a_conditional_delete_of_several_names_no_single_version(client):
    family = unique("Several")
    for _ in range(2):
        assert post(client, patient(name=[{"family": family}])).status_code == 201
    deleted = client.delete(f"/fhir/Patient?family={family}")
    assert deleted.status_code == 200, deleted.get_json()
    assert "ETag" not in deleted.headers and "Last-Modified" not in deleted.headers
    assert deleted.get_json()["issue"][0]["diagnostics"].count("Deleted Patient/") == 2
    one = post(client, patient(name=[{"family": family}])).get_json()
    single = client.delete(f"/fhir/Patient?family={family}")
    assert single.headers["ETag"] == 'W/"2"', single.get_json()
    assert client.get(f"/fhir/Patient/{one['id']}").status_code == 410


def test_json_patch(client):
    created = post(client, patient()).get_json()
    operations = [{"op": "replace", "path": "/gender", "value": "male"},
                  {"op": "add", "path": "/name/0/given/-", "value": "Mary"}]
    patched = client.patch(f"/fhir/Patient/{created['id']}", data=orjson.dumps(operations),
                           content_type="application/json-patch+json")
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["gender"] == "male" and body["name"][0]["given"] == ["Jean", "Mary"]
    assert body["meta"]["versionId"] == "2"
    invalid = client.patch(f"/fhir/Patient/{created['id']}",
                           data=orjson.dumps([{"op": "replace", "path": "/gender", "value": "bogus"}]),
                           content_type="application/json-patch+json")
    assert_outcome(invalid, 400, expression="Patient.gender")
    broken = client.patch(f"/fhir/Patient/{created['id']}", data=orjson.dumps([{"op": "remove", "path": "/x"}]),
                          content_type="application/json-patch+json")
    assert_outcome(broken, 422)
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["meta"]["versionId"] == "2"


def test_fhirpath_patch(client):
    created = post(client, patient()).get_json()
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.birthDate"},
        {"name": "value", "valueDate": "1934-03-15"}]}]}
    patched = client.patch(f"/fhir/Patient/{created['id']}", data=orjson.dumps(parameters), content_type=FHIR_JSON)
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["birthDate"] == "1934-03-15"


def test_patch_in_transaction_with_binary(client):
    created = post(client, patient()).get_json()
    document = base64.b64encode(orjson.dumps([{"op": "replace", "path": "/gender", "value": "unknown"}])).decode()
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": document},
        "request": {"method": "PATCH", "url": f"Patient/{created['id']}"}}]}
    response = client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON)
    assert response.status_code == 200, response.get_json()
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["gender"] == "unknown"


def test_pretty_and_format(client):
    created = post(client, patient()).get_json()
    pretty = client.get(f"/fhir/Patient/{created['id']}?_pretty=true")
    assert b'\n  "resourceType"' in pretty.data
    as_json = client.get(f"/fhir/Patient/{created['id']}?_format=json")
    assert as_json.status_code == 200
    plain = client.get(f"/fhir/Patient/{created['id']}", headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"].startswith("application/json")


def test_summary_and_elements_on_read(client):
    created = post(client, patient(text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"})).get_json()
    summary = client.get(f"/fhir/Patient/{created['id']}?_summary=true").get_json()
    assert "text" not in summary and "name" in summary
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = client.get(f"/fhir/Patient/{created['id']}?_elements=gender").get_json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}


def test_head_and_health(client):
    created = post(client, patient()).get_json()
    head = client.head(f"/fhir/Patient/{created['id']}")
    assert head.status_code == 200 and head.data == b""
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
