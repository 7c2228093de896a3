"""Batch and transaction Bundles: atomicity, processing order, reference resolution, conditional headers."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select, text

from server.store.schema import metadata
from tests.support import FHIR_JSON, assert_outcome, patient, unique


def post_bundle(client, entries, kind="transaction", **headers):
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    return client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON, headers=headers)


AUDIT_TABLES = ("audit_events", "audit_patients")


def table_counts(app) -> dict[str, int]:
    """Rows per table of the record (the audit trail, which every request adds to, apart)."""
    engine = app.extensions["sharedcare"].services.engine
    with engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in metadata.tables.items() if name not in AUDIT_TABLES}


def audit_statuses(app) -> list[int]:
    engine = app.extensions["sharedcare"].services.engine
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT status FROM audit_events ORDER BY pk")).scalars())


def test_transaction_resolves_urn_uuid_and_answers_per_entry(client):
    number = unique("nhs")
    entries = [
        {"fullUrl": "urn:uuid:2b0e7f2e-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Condition", "code": {"text": "frailty"},
                      "subject": {"reference": "urn:uuid:2b0e7f2e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Condition"}},
        {"fullUrl": "urn:uuid:2b0e7f2e-0000-4000-8000-000000000001", "resource": patient(number),
         "request": {"method": "POST", "url": "Patient"}},
    ]
    response = post_bundle(client, entries, Prefer="return=representation")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["type"] == "transaction-response"
    condition_entry, patient_entry = body["entry"]
    assert patient_entry["response"]["status"] == "201 Created"
    assert patient_entry["response"]["etag"] == 'W/"1"'
    assert patient_entry["response"]["location"].startswith("Patient/")
    patient_id = patient_entry["resource"]["id"]
    assert condition_entry["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    search = client.get(f"/fhir/Condition?subject=Patient/{patient_id}").get_json()
    assert search["total"] == 1


def test_transaction_is_atomic_when_last_entry_is_invalid(fresh_app):
    client = fresh_app.test_client()
    client.post("/fhir/Patient", data=orjson.dumps(patient()), content_type=FHIR_JSON)
    before = table_counts(fresh_app)
    entries = [
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "CarePlan", "status": "bogus", "intent": "plan",
                      "subject": {"reference": "Patient/x"}},
         "request": {"method": "POST", "url": "CarePlan"}},
    ]
    audited = audit_statuses(fresh_app)
    response = post_bundle(client, entries)
    body = assert_outcome(response, 400, "code-invalid", expression="Bundle.entry[2]")
    assert any("CarePlan.status" in i.get("expression", []) for i in body["issue"])
    assert table_counts(fresh_app) == before
    assert audit_statuses(fresh_app) == [*audited, 400]  # the refusal is audited, nothing else is left


def test_transaction_processing_order_delete_post_put_get(client):
    existing = client.post("/fhir/Patient", data=orjson.dumps(patient()), content_type=FHIR_JSON).get_json()
    target_id = unique("p")
    entries = [
        {"request": {"method": "GET", "url": f"Patient/{target_id}"}},
        {"resource": {**patient(), "id": target_id}, "request": {"method": "PUT", "url": f"Patient/{target_id}"}},
        {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
    ]
    response = post_bundle(client, entries, Prefer="return=representation")
    assert response.status_code == 200, response.get_json()
    get_entry, put_entry, delete_entry = response.get_json()["entry"]
    assert get_entry["response"]["status"] == "200 OK"
    assert get_entry["resource"]["id"] == target_id  # the GET ran after the PUT
    assert put_entry["response"]["status"] == "201 Created"
    assert delete_entry["response"]["status"].startswith(("200", "204"))
    assert client.get(f"/fhir/Patient/{existing['id']}").status_code == 410


def test_transaction_conditional_create_and_conditional_reference(client):
    npi = unique("npi")
    practitioner = {"resourceType": "Practitioner", "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi",
                                                                     "value": npi}]}
    first = post_bundle(client, [{"fullUrl": "urn:uuid:aa", "resource": practitioner, "request": {
        "method": "POST", "url": "Practitioner", "ifNoneExist": f"identifier=http://hl7.org/fhir/sid/us-npi|{npi}"}}])
    created_at = first.get_json()["entry"][0]["response"]["location"].split("/_history")[0]
    again = post_bundle(client, [
        {"fullUrl": "urn:uuid:bb", "resource": practitioner, "request": {
            "method": "POST", "url": "Practitioner", "ifNoneExist": f"identifier=http://hl7.org/fhir/sid/us-npi|{npi}"}},
        {"resource": {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                      "participant": [{"individual": {
                          "reference": f"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}"}}],
                      "serviceProvider": {"reference": "urn:uuid:bb"}},
         "request": {"method": "POST", "url": "Encounter"}},
    ], Prefer="return=representation")
    assert again.status_code == 200, again.get_json()
    practitioner_entry, encounter_entry = again.get_json()["entry"]
    assert practitioner_entry["response"]["status"] == "200 OK"
    assert practitioner_entry["response"]["location"].startswith(created_at)
    encounter = encounter_entry["resource"]
    assert encounter["participant"][0]["individual"]["reference"] == created_at
    missing = post_bundle(client, [{"resource": {
        "resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
        "participant": [{"individual": {"reference": "Practitioner?identifier=none|none"}}]},
        "request": {"method": "POST", "url": "Encounter"}}])
    assert_outcome(missing, 412, expression="Bundle.entry[0]")


def test_transaction_if_match_and_if_none_match(client):
    created = client.post("/fhir/Patient", data=orjson.dumps(patient()), content_type=FHIR_JSON).get_json()
    stale = post_bundle(client, [{"resource": {**created, "gender": "male"}, "request": {
        "method": "PUT", "url": f"Patient/{created['id']}", "ifMatch": 'W/"5"'}}])
    assert_outcome(stale, 412)
    fresh = post_bundle(client, [
        {"resource": {**created, "gender": "male"}, "request": {
            "method": "PUT", "url": f"Patient/{created['id']}", "ifMatch": 'W/"1"'}},
    ])
    assert fresh.get_json()["entry"][0]["response"]["etag"] == 'W/"2"'
    cached = post_bundle(client, [
        {"request": {"method": "GET", "url": f"Patient/{created['id']}", "ifNoneMatch": 'W/"2"'}},
        {"request": {"method": "GET", "url": f"Patient/{created['id']}",
                     "ifModifiedSince": "2100-01-01T00:00:00Z"}},
    ], kind="batch")
    statuses = [e["response"]["status"] for e in cached.get_json()["entry"]]
    assert statuses == ["304 Not Modified", "304 Not Modified"]


def test_batch_entries_succeed_or_fail_alone(client):
    number = unique("nhs")
    response = post_bundle(client, [
        {"resource": patient(number), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "bogus"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
    ], kind="batch")
    assert response.status_code == 200
    body = response.get_json()
    assert body["type"] == "batch-response"
    first, second, third = body["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"] == "400 Bad Request"
    assert second["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert third["response"]["status"] == "404 Not Found"
    found = client.get(f"/fhir/Patient?identifier={number}").get_json()
    assert found["total"] == 1


def test_bundle_errors(client):
    assert_outcome(client.post("/fhir", data=orjson.dumps({"resourceType": "Bundle", "type": "collection"}),
                               content_type=FHIR_JSON), 400, expression="Bundle.type")
    assert_outcome(client.post("/fhir", data=orjson.dumps(patient()), content_type=FHIR_JSON), 400)
    no_request = post_bundle(client, [{"resource": patient()}])
    assert_outcome(no_request, 400, expression="Bundle.entry[0].request")
    duplicate = post_bundle(client, [
        {"fullUrl": "urn:uuid:1", "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:1", "resource": patient(), "request": {"method": "POST", "url": "Patient"}}])
    assert_outcome(duplicate, 400)


def test_conditional_reference_to_a_conditional_entry_of_the_same_transaction(client):
    number = unique("nhs")
    condition = f"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{number}"
    entries = [
        {"resource": {"resourceType": "Condition", "code": {"text": "frailty"}, "subject": {"reference": condition}},
         "request": {"method": "POST", "url": "Condition"}},
        {"resource": patient(number), "request": {"method": "PUT", "url": condition}},
    ]
    first = post_bundle(client, entries, Prefer="return=representation")
    assert first.status_code == 200, first.get_json()
    created, patient_entry = first.get_json()["entry"]
    assert patient_entry["response"]["status"] == "201 Created"
    assert created["resource"]["subject"]["reference"] == f"Patient/{patient_entry['resource']['id']}"
    again = post_bundle(client, entries[1:], Prefer="return=representation").get_json()["entry"][0]
    assert again["response"]["status"] == "200 OK"
    assert again["resource"]["meta"]["versionId"] == "1"
