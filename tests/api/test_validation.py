"""Profile validation over HTTP: writes, $validate, mandatory profiles and the installed conformance resources."""

from __future__ import annotations

import copy
import uuid

import orjson
import pytest

from server.app import create_app
from server.config import Settings
from server.store.conformance import install_bundled
from tests.auth import authenticate_app
from tests.scr_cases import cases
from tests.scr_examples import SD, care_record, examples, referenced_examples
from tests.support import FHIR_JSON, assert_outcome, patient

EXAMPLES = examples()
CASES = cases()


def store_referenced(client) -> None:
    """Store what the examples refer to (Patient/jean and the others), so their references resolve."""
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in referenced_examples()]
    response = post(client, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, "/fhir")
    assert response.status_code == 200, response.get_json()


@pytest.fixture(scope="module", autouse=True)
def referenced(app) -> None:
    store_referenced(app.test_client())


def post(client, resource, path: str | None = None):
    return client.post(path or f"/fhir/{resource['resourceType']}", data=orjson.dumps(resource),
                       content_type=FHIR_JSON)


def search(client, query: str) -> dict:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# ------------------------------------------------------------------------------ writes


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_profile_example_is_stored(client, name):
    response = post(client, EXAMPLES[name])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["meta"]["profile"] == [SD + name]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_write_breaking_a_constraint_is_refused_with_422(client, case):
    resource = copy.deepcopy(EXAMPLES[case.profile])
    case.mutate(resource)
    body = assert_outcome(post(client, resource), 422, code=case.issue_code, text=case.label)
    named = [i for i in body["issue"] if case.label in i["diagnostics"]]
    assert all(i["expression"][0].startswith(resource["resourceType"]) for i in named)


def test_update_and_patch_are_checked_too(client):
    created = post(client, EXAMPLES["SCR-Patient"]).get_json()
    broken = {**created}
    del broken["birthDate"]
    response = client.put(f"/fhir/Patient/{created['id']}", data=orjson.dumps(broken), content_type=FHIR_JSON)
    assert_outcome(response, 422, code="required", expression="Patient.birthDate")
    patch = [{"op": "replace", "path": "/identifier/0/value", "value": "9434765918"}]
    response = client.patch(f"/fhir/Patient/{created['id']}", data=orjson.dumps(patch),
                            content_type="application/json-patch+json")
    assert_outcome(response, 422, code="invariant", text="scr-nhs-1", expression="Patient.identifier[0]")
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["meta"]["versionId"] == "1"


def test_a_transaction_with_one_bad_entry_is_refused_pointing_at_it(client):
    good = copy.deepcopy(EXAMPLES["SCR-Organization"])
    bad = copy.deepcopy(EXAMPLES["SCR-Flag"])
    del bad["author"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": good, "request": {"method": "POST", "url": "Organization"}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": bad, "request": {"method": "POST", "url": "Flag"}},
    ]}
    body = assert_outcome(post(client, bundle, "/fhir"), 422, code="invariant", text="scr-flag-1")
    assert body["issue"][0]["expression"][:2] == ["Bundle.entry[1]", "Flag"]


def test_the_sample_care_record_loads_as_a_transaction(client, shared_dir):
    resources = care_record(shared_dir / "data" / "extracts-sample")
    entries = []
    for resource in resources:
        if "id" in resource:
            request = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        else:
            request = {"method": "POST", "url": resource["resourceType"]}
        entries.append({"resource": resource, "request": request})
    response = post(client, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, "/fhir")
    assert response.status_code == 200, response.get_json()
    statuses = [e["response"]["status"] for e in response.get_json()["entry"]]
    assert all(s.startswith(("200", "201")) for s in statuses)
    assert len(statuses) == len(resources) > 100
    spells = search(client, f"Encounter?_profile={SD}SCR-Encounter-HospitalSpell&_total=accurate&_count=0")
    assert spells["total"] >= 10


# ------------------------------------------------------------------------------ conformance resources


@pytest.mark.parametrize(("kind", "url"), [
    ("StructureDefinition", f"{SD}SCR-Patient"),
    ("StructureDefinition", f"{SD}Extension-SCR-WeeklyCost"),
    ("ValueSet", "https://sharedcare.example.org/fhir/ValueSet/cld-service-type"),
    ("CodeSystem", "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland"),
    ("ConceptMap", "https://sharedcare.example.org/fhir/ConceptMap/gp-sex-to-administrative-gender"),
])
def test_conformance_resources_are_searchable_by_url(client, kind, url):
    bundle = search(client, f"{kind}?url={url}")
    assert [e["resource"]["url"] for e in bundle["entry"]] == [url]
    resource = bundle["entry"][0]["resource"]
    assert client.get(f"/fhir/{kind}/{resource['id']}").status_code == 200


def test_profiles_of_a_type_are_searchable_and_carry_snapshots(client):
    bundle = search(client, "StructureDefinition?type=EpisodeOfCare&derivation=constraint")
    urls = {e["resource"]["url"] for e in bundle["entry"]}
    assert {f"{SD}SCR-EpisodeOfCare-CaseManagement", f"{SD}SCR-EpisodeOfCare-SocialCareService"} <= urls
    assert all(e["resource"]["snapshot"]["element"] for e in bundle["entry"])


def test_installing_again_creates_no_versions(client, database_url):
    summary = install_bundled(database_url)
    assert not summary.created and not summary.updated
    bundled = client.application.extensions["sharedcare"].services.profiles.conformance.all()
    assert len(summary.unchanged) == len(bundled) > 80
    history = client.get("/fhir/StructureDefinition/SCR-Patient/_history").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["1"]


def test_capability_statement_lists_supported_profiles(client):
    statement = client.get("/fhir/metadata").get_json()
    by_type = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    assert by_type["EpisodeOfCare"]["supportedProfile"] == [f"{SD}SCR-EpisodeOfCare-CaseManagement",
                                                            f"{SD}SCR-EpisodeOfCare-SocialCareService"]
    assert by_type["RiskAssessment"]["supportedProfile"] == [f"{SD}SCR-RiskAssessment"]
    assert "supportedProfile" not in by_type["Medication"]
    operations = {op["name"] for op in by_type["Patient"]["operation"]}
    assert "validate" in operations


# ------------------------------------------------------------------------------ $validate


def validate(client, body, path: str = "Patient/$validate", **params):
    return client.post(f"/fhir/{path}", data=orjson.dumps(body), content_type=FHIR_JSON, query_string=params)


def parameters(resource=None, **values) -> dict:
    parts = [{"name": "resource", "resource": resource}] if resource is not None else []
    parts += [{"name": name, "valueCode" if name == "mode" else "valueUri": value} for name, value in values.items()]
    return {"resourceType": "Parameters", "parameter": parts}


def test_validate_a_valid_resource(client):
    response = validate(client, EXAMPLES["SCR-Patient"])
    assert response.status_code == 200
    assert response.get_json()["issue"] == [{"severity": "information", "code": "informational",
                                             "diagnostics": "All OK"}]


def test_validate_reports_every_problem_with_its_expression_and_answers_200(client):
    resource = copy.deepcopy(EXAMPLES["SCR-Patient"])
    resource["identifier"][0]["value"] = "9434765918"
    del resource["birthDate"], resource["gender"]
    body = assert_outcome(validate(client, resource), 200)
    found = {(i["code"], i["expression"][0]) for i in body["issue"]}
    assert found == {("invariant", "Patient.identifier[0]"), ("required", "Patient.birthDate"),
                     ("required", "Patient.gender")}


def test_validate_structure_problems_and_warnings(client):
    body = assert_outcome(validate(client, {**EXAMPLES["SCR-Patient"], "gender": "bogus"}), 200, code="code-invalid")
    assert body["issue"][0]["severity"] == "error"
    body = assert_outcome(validate(client, EXAMPLES["SCR-MedicationRequest"], "MedicationRequest/$validate"), 200)
    assert [i["severity"] for i in body["issue"]] == ["warning"]


def test_validate_against_a_named_profile(client):
    plain = patient("9434765918")  # a wrong check digit: only the profile notices
    assert validate(client, parameters(plain)).get_json()["issue"][0]["severity"] == "information"
    body = assert_outcome(validate(client, parameters(plain, profile=f"{SD}SCR-Patient")), 200, code="invariant",
                          text="scr-nhs-1")
    assert [i["expression"] for i in body["issue"]] == [["Patient.identifier[0]"]]
    body = validate(client, parameters(plain), profile=f"{SD}SCR-Observation").get_json()
    assert "constrains Observation, not Patient" in body["issue"][0]["diagnostics"]
    body = validate(client, parameters(plain), profile="https://example.org/nope").get_json()
    assert body["issue"][0]["code"] == "not-supported"


def test_validate_modes(client):
    created = post(client, EXAMPLES["SCR-Organization"]).get_json()
    url = f"Organization/{created['id']}/$validate"
    assert validate(client, parameters(created, mode="update"), url).get_json()["issue"][0]["severity"] == "information"
    other = {**created, "id": "someone-else"}
    assert_outcome(validate(client, parameters(other, mode="update"), url), 200, code="invalid",
                   expression="Organization.id")
    no_id = {k: v for k, v in created.items() if k != "id"}
    assert_outcome(validate(client, parameters(no_id, mode="update"), "Organization/$validate"), 200,
                   code="required", expression="Organization.id")
    assert validate(client, parameters(no_id, mode="create"),
                    "Organization/$validate").get_json()["issue"][0]["severity"] == "information"
    deleting = validate(client, parameters(mode="delete"), url).get_json()
    assert deleting["issue"][0]["severity"] == "information"
    assert_outcome(validate(client, parameters(mode="delete"), "Organization/no-such-thing/$validate"), 200,
                   code="not-found")
    assert_outcome(validate(client, parameters(mode="delete"), "Organization/$validate"), 400, code="required")
    assert_outcome(validate(client, parameters(no_id, mode="replace"), "Organization/$validate"), 400, code="value")


def test_validate_the_stored_instance_with_get(client):
    created = post(client, EXAMPLES["SCR-Condition"]).get_json()
    response = client.get(f"/fhir/Condition/{created['id']}/$validate")
    assert response.status_code == 200
    assert response.get_json()["issue"][0]["severity"] == "information"
    body = client.get(f"/fhir/Condition/{created['id']}/$validate",
                      query_string={"profile": f"{SD}SCR-Condition"}).get_json()
    assert body["issue"][0]["severity"] == "information"
    assert_outcome(client.get("/fhir/Condition/$validate"), 400, code="required")
    assert_outcome(client.get("/fhir/Condition/missing-one/$validate"), 404)


def test_validate_needs_a_resource_of_the_right_type(client):
    assert_outcome(validate(client, parameters(mode="create")), 400, code="required")
    body = assert_outcome(validate(client, EXAMPLES["SCR-Flag"]), 200)
    assert "Flag" in body["issue"][0]["diagnostics"]


# ------------------------------------------------------------------------------ mandatory profiles


@pytest.fixture(scope="module")
def mandatory_client(database_url):
    app = create_app(Settings.from_env({"MANDATORY_PROFILES": "care-record"}, database_url=database_url))
    authenticate_app(app)
    yield app.test_client()
    app.extensions["sharedcare"].services.database.dispose()


def test_settings_read_mandatory_profiles_and_base():
    settings = Settings.from_env({"MANDATORY_PROFILES": f"Patient={SD}SCR-Patient",
                                  "PROJECT_BASE_URI": "https://care.example.net/fhir/"})
    assert settings.mandatory_profiles == f"Patient={SD}SCR-Patient"
    assert settings.project_base_uri == "https://care.example.net/fhir"
    assert Settings.from_env({}).mandatory_profiles == ""


def test_mandatory_profiles_make_care_record_types_conform(mandatory_client):
    plain = patient("9434765919")
    del plain["birthDate"]
    assert_outcome(post(mandatory_client, plain), 422, code="required", expression="Patient.birthDate")
    unclaimed = {k: v for k, v in EXAMPLES["SCR-Patient"].items() if k != "meta"}
    assert post(mandatory_client, unclaimed).status_code == 201
    encounter = {k: v for k, v in EXAMPLES["SCR-Encounter-GPContact"].items() if k != "meta"}
    assert_outcome(post(mandatory_client, encounter), 422, text="must claim one of the profiles")
    assert post(mandatory_client, EXAMPLES["SCR-Encounter-GPContact"]).status_code == 201
    other = {"resourceType": "Medication", "code": {"text": "Paracetamol"}}
    assert post(mandatory_client, other).status_code == 201


def test_without_the_setting_unclaimed_resources_are_not_profiled(client):
    assert post(client, patient("9434765919")).status_code == 201
