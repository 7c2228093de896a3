"""References must resolve: a transaction's urn:uuid references, and referential integrity on write and delete
(REFERENTIAL_INTEGRITY), answered alike for a missing resource and one the caller cannot see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from flask import Flask
from sqlalchemy import event

from server.app import create_app
from server.config import Settings
from tests.auth import authenticate_app, client_for, register_client
from tests.support import FHIR_JSON, assert_outcome, patient, unique

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
BASE = "https://scr.example.org/fhir"


def post(client, resource: dict, path: str | None = None):
    return client.post(path or f"/fhir/{resource['resourceType']}", data=orjson.dumps(resource),
                       content_type=FHIR_JSON)


def transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def count(client, query: str) -> int:
    response = client.get(f"/fhir/{query}&_summary=count")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["total"]


def observation(subject: str, **extra) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": unique("obs")},
            "subject": {"reference": subject}, **extra}


@pytest.fixture(scope="module")
def configured(settings: Settings) -> Iterator[dict[str, Flask]]:
    """Apps on the session's database with other settings: each REFERENTIAL_INTEGRITY value, and BASE_URL."""
    def made(**options: str) -> Flask:  # one pooled connection each: PostgreSQL's connection slots are shared
        return create_app(Settings.from_env({}, database_url=settings.database_url, pool_size=1, **options))

    apps = {value: made(referential_integrity=value) for value in ("write", "delete", "off")}
    apps["base"] = made(base_url=BASE)
    for made in apps.values():
        authenticate_app(made)
    yield apps
    for made in apps.values():
        made.extensions["sharedcare"].services.database.dispose()


# ----------------------------------------------------------------------------- urn:uuid in transactions


def test_a_urn_uuid_no_entry_carries_is_refused_naming_entry_and_element(client):
    family = unique("Urn")
    bundle = transaction(
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": patient(name=[{"family": family}]),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                      "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                      "author": {"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"}},
         "request": {"method": "POST", "url": "CarePlan"}})
    body = assert_outcome(post(client, bundle, "/fhir"), 400, code="not-found",
                          expression="Bundle.entry[1].resource.author.reference",
                          text="urn:uuid:22222222-2222-4222-8222-222222222222")
    assert "Bundle.entry[1]" in body["issue"][0]["expression"]
    assert count(client, f"Patient?family={family}") == 0


def test_a_urn_oid_reference_resolves_to_its_entry(client):
    family = unique("Oid")
    bundle = transaction(
        {"fullUrl": "urn:oid:1.2.3.4.5", "resource": patient(name=[{"family": family}]),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation("urn:oid:1.2.3.4.5"), "request": {"method": "POST", "url": "Observation"}})
    response = post(client, bundle, "/fhir")
    assert response.status_code == 200, response.get_json()
    created = response.get_json()["entry"][0]["response"]["location"].split("/")[1]
    assert count(client, f"Observation?subject=Patient/{created}") == 1


# ----------------------------------------------------------------------------- integrity on write


def test_a_reference_to_a_missing_resource_is_refused_and_nothing_is_written(client):
    code = unique("missing")
    body = assert_outcome(post(client, observation("Patient/no-such-patient", code={"text": code})), 400,
                          code="not-found", expression="Observation.subject.reference", text="Patient/no-such-patient")
    assert "does not exist" in body["issue"][0]["diagnostics"]
    assert count(client, f"Observation?code:text={code}") == 0


@pytest.mark.parametrize("reference", ["Organization/a_b", "Organization/" + "x" * 65, "Organization/a%20b",
                                       "Organization/a:b/_history/1"])
def test_a_reference_whose_id_no_resource_can_have_is_refused(client, reference):
    """A relative reference whose id breaks FHIR's id rules can name nothing here: refused as missing (it was
    passed over as another server's reference and stored)."""
    code = unique("malformed")
    body = observation("Patient/no-such-patient", code={"text": code})
    body["subject"] = {"reference": reference}
    assert_outcome(post(client, body), 400, code="not-found", expression="Observation.subject.reference")
    assert count(client, f"Observation?code:text={code}") == 0


def test_a_transaction_may_refer_to_what_it_creates_but_not_to_what_it_lacks(client):
    family = unique("Tx")
    existing = post(client, patient()).get_json()
    good = transaction(
        {"resource": {**patient(name=[{"family": family}]), "id": f"{family}-p"},
         "request": {"method": "PUT", "url": f"Patient/{family}-p"}},
        {"resource": observation(f"Patient/{family}-p", performer=[{"reference": f"Patient/{existing['id']}"}]),
         "request": {"method": "POST", "url": "Observation"}})
    assert post(client, good, "/fhir").status_code == 200
    bad = transaction(
        {"resource": patient(name=[{"family": family}]), "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation(f"Patient/{existing['id']}", hasMember=[{"reference": "Observation/nowhere"}]),
         "request": {"method": "POST", "url": "Observation"}})
    body = assert_outcome(post(client, bad, "/fhir"), 400, code="not-found", text="Observation/nowhere",
                          expression="Observation.hasMember[0].reference")
    assert "Bundle.entry[1]" in body["issue"][0]["expression"]
    assert count(client, f"Patient?family={family}") == 1  # only the first transaction's


def test_contained_logical_and_other_servers_references_are_not_checked(client):
    response = post(client, {
        **observation("#p"), "contained": [{"resourceType": "Patient", "id": "p"}],
        "performer": [{"identifier": {"system": "https://fhir.hl7.org.uk/Id/gmc-number", "value": "G1"}},
                      {"reference": "https://elsewhere.example.org/fhir/Practitioner/9"}]})
    assert response.status_code == 201, response.get_json()


def test_an_absolute_reference_under_the_base_is_checked(configured):
    client = configured["base"].test_client()
    target = post(client, patient()).get_json()
    assert post(client, observation(f"{BASE}/Patient/{target['id']}")).status_code == 201
    assert_outcome(post(client, observation(f"{BASE}/Patient/absent-one")), 400, code="not-found",
                   text="Patient/absent-one")


def test_references_are_checked_in_one_statement_however_many(app, client):
    practitioners = [post(client, {"resourceType": "Practitioner", "name": [{"family": unique("P")}]}).get_json()
                     for _ in range(30)]
    target = post(client, patient()).get_json()

    def statements(performers: list[dict]) -> int:
        with counted(app) as executed:
            response = post(client, transaction({"resource": observation(f"Patient/{target['id']}",
                                                                        performer=performers),
                                                 "request": {"method": "POST", "url": "Observation"}}), "/fhir")
        assert response.status_code == 200, response.get_json()
        return len(executed)

    one = statements([{"reference": f"Practitioner/{practitioners[0]['id']}"}])
    thirty = statements([{"reference": f"Practitioner/{p['id']}"} for p in practitioners])
    assert thirty == one


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's writing engine runs meanwhile."""
    engine = app.extensions["sharedcare"].services.database.writer
    executed: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        executed.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield executed
    finally:
        event.remove(engine, "before_cursor_execute", note)


# ----------------------------------------------------------------------------- integrity on delete


def test_a_delete_that_would_leave_references_dangling_is_refused_naming_the_referrers(client):
    target = post(client, patient()).get_json()
    referrers = [post(client, observation(f"Patient/{target['id']}")).get_json() for _ in range(12)]
    body = assert_outcome(client.delete(f"/fhir/Patient/{target['id']}"), 409, code="conflict",
                          text=f"Patient/{target['id']} cannot be deleted")
    named = [r for r in referrers if f"Observation/{r['id']}" in body["issue"][0]["diagnostics"]]
    assert len(named) == 10  # up to ten of the twelve
    assert client.get(f"/fhir/Patient/{target['id']}").status_code == 200
    entries = [{"request": {"method": "DELETE", "url": f"Observation/{r['id']}"}} for r in referrers]
    entries.append({"request": {"method": "DELETE", "url": f"Patient/{target['id']}"}})
    assert post(client, transaction(*entries), "/fhir").status_code == 200  # referrers go in the same transaction
    assert client.get(f"/fhir/Patient/{target['id']}").status_code == 410


def test_a_conditional_delete_is_checked_too(client):
    family = unique("Kept")
    target = post(client, patient(name=[{"family": family}])).get_json()
    post(client, observation(f"Patient/{target['id']}"))
    assert_outcome(client.delete(f"/fhir/Patient?family={family}"), 409, code="conflict",
                   text=f"Patient/{target['id']}")
    assert count(client, f"Patient?family={family}") == 1


# ----------------------------------------------------------------------------- the setting


def test_referential_integrity_setting_turns_each_check_off(configured):
    write_only, delete_only, off = (configured[k].test_client() for k in ("write", "delete", "off"))
    assert_outcome(post(write_only, observation("Patient/gone-a")), 400, code="not-found")
    target = post(write_only, patient()).get_json()
    post(write_only, observation(f"Patient/{target['id']}"))
    assert write_only.delete(f"/fhir/Patient/{target['id']}").status_code == 200  # deletes unchecked
    assert post(delete_only, observation("Patient/gone-b")).status_code == 201  # writes unchecked
    other = post(delete_only, patient()).get_json()
    post(delete_only, observation(f"Patient/{other['id']}"))
    assert_outcome(delete_only.delete(f"/fhir/Patient/{other['id']}"), 409, code="conflict")
    assert post(off, observation("Patient/gone-c")).status_code == 201
    assert off.delete(f"/fhir/Patient/{other['id']}").status_code == 200


def test_an_unknown_setting_value_is_refused_at_start(settings: Settings):
    with pytest.raises(ValueError, match="REFERENTIAL_INTEGRITY"):
        create_app(Settings.from_env({}, database_url=settings.database_url, referential_integrity="sometimes"))


# ----------------------------------------------------------------------------- no oracle


def test_a_resource_out_of_reach_is_answered_as_a_missing_one(app, client):
    code = unique("ODS").upper()
    practice = post(client, {"resourceType": "Organization", "identifier": [{"system": ODS, "value": code}]}).get_json()
    held = post(client, patient(generalPractitioner=[{"reference": f"Organization/{practice['id']}"}])).get_json()
    elsewhere = post(client, patient()).get_json()
    hidden = post(client, observation(f"Patient/{elsewhere['id']}")).get_json()
    mine = post(client, observation(f"Patient/{held['id']}")).get_json()
    gp = client_for(app, register_client(app, kind="gp", organization=f"{ODS}|{code}", scope="system/*.cruds"))

    def member(reference: str):
        return post(gp, observation(f"Patient/{held['id']}", hasMember=[{"reference": reference}]))

    assert member(f"Observation/{mine['id']}").status_code == 201
    out_of_reach = assert_outcome(member(f"Observation/{hidden['id']}"), 400, code="not-found")
    missing = assert_outcome(member("Observation/never-was"), 400, code="not-found")

    def shape(body: dict, target: str) -> list:
        return [{**issue, "diagnostics": issue["diagnostics"].replace(target, "X").split(": ", 1)[1]}
                for issue in body["issue"]]

    assert shape(out_of_reach, hidden["id"]) == shape(missing, "never-was")
