"""One answer names every problem of a request, each once and where it is: the FHIR JSON rules, the R4B model,
required bindings and the profiles the resource claims, whichever of them finds it."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support import FHIR_JSON, assert_outcome, patient, unique

SCR_PATIENT = "https://sharedcare.example.org/fhir/StructureDefinition/SCR-Patient"
SCR_CONDITION = "https://sharedcare.example.org/fhir/StructureDefinition/SCR-Condition"
GENDER_SET = "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"
VALID_NHS = "9434765919"  # meets the profile's modulus-11 check


def post(client, resource: dict[str, Any], path: str | None = None):
    return client.post(path or f"/fhir/{resource['resourceType']}", data=orjson.dumps(resource),
                       content_type=FHIR_JSON)


def located(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, first expression) of each issue, in order."""
    return [(issue["code"], issue.get("expression", [""])[0]) for issue in body["issue"]]


def broken_patient(mark: str) -> dict[str, Any]:
    """A Patient breaking the JSON rules (an empty family, an unknown element, a month 13) and a required
    binding (gender)."""
    return {**patient(mark), "gender": "mal", "name": [{"family": "", "given": ["Jean"]}], "nickname": "J",
            "birthDate": "1936-13-02"}


def count_of(client, mark: str) -> int:
    found = client.get(f"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{mark}&_summary=count")
    return found.get_json()["total"]


def test_a_create_names_every_problem_once_with_its_location(client):
    mark = unique("nhs")
    body = assert_outcome(post(client, broken_patient(mark)), 400)
    assert sorted(located(body)) == [
        ("code-invalid", "Patient.gender"),
        ("structure", "Patient.name[0].family"),
        ("structure", "Patient.nickname"),
        ("value", "Patient.birthDate"),
    ], body
    gender = next(i for i in body["issue"] if i["code"] == "code-invalid")
    assert "'mal'" in gender["diagnostics"] and GENDER_SET in gender["diagnostics"]
    assert count_of(client, mark) == 0


def test_an_empty_family_is_named_once_though_the_rules_and_the_model_both_refuse_it(client):
    body = assert_outcome(post(client, {**patient(), "name": [{"family": ""}]}), 400)
    assert located(body) == [("structure", "Patient.name[0].family")], body


def test_an_update_and_validate_name_the_same_problems(client):
    mark = unique("nhs")
    resource = {**broken_patient(mark), "id": unique("every")}
    put = assert_outcome(client.put(f"/fhir/Patient/{resource['id']}", data=orjson.dumps(resource),
                                    content_type=FHIR_JSON), 400)
    checked = client.post("/fhir/Patient/$validate", data=orjson.dumps(resource), content_type=FHIR_JSON)
    assert checked.status_code == 200
    assert sorted(located(checked.get_json())) == sorted(located(put)) and len(located(put)) == 4
    assert client.get(f"/fhir/Patient/{resource['id']}").status_code == 404


def test_a_profile_problem_comes_in_the_same_answer_as_a_structural_one(client):
    """A Patient claiming the SCR profile without a birth date (the profile needs one) and with an invalid
    gender: one 400 names both; once the gender is right, the profile's problem alone is a 422."""
    resource = {**patient(VALID_NHS), "meta": {"profile": [SCR_PATIENT]}, "gender": "mal"}
    resource.pop("birthDate", None)
    body = assert_outcome(post(client, resource), 400)
    assert ("code-invalid", "Patient.gender") in located(body), body
    profile_issues = [issue for issue in body["issue"] if "birthDate" in issue.get("expression", [""])[0]
                      or "birthDate" in issue["diagnostics"]]
    assert len(profile_issues) == 1, body
    alone = assert_outcome(post(client, {**resource, "gender": "female"}), 422)
    assert [issue["diagnostics"] for issue in alone["issue"] if issue["severity"] == "error"] == \
        [profile_issues[0]["diagnostics"]]


def test_a_profile_problem_inside_an_element_the_rules_refuse_is_not_named_again(client):
    """An empty NHS number breaks the JSON rules; the profile's check digit rule on the same value adds
    nothing more about it."""
    resource = {**patient(), "meta": {"profile": [SCR_PATIENT]}, "gender": "female",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": ""}]}
    body = assert_outcome(post(client, resource), 400)
    assert located(body) == [("structure", "Patient.identifier[0].value")], body


def test_malformed_codings_are_named_once_by_the_rules_and_the_profile_still_checks_the_rest(client):
    """Codings that are not an array, or a code that is not a string, are named by the JSON rules; the
    bindings of the concepts holding them add nothing, and the profile's own rules are checked besides."""
    condition = {"resourceType": "Condition", "meta": {"profile": [SCR_CONDITION]},
                 "clinicalStatus": {"coding": 1}, "verificationStatus": {"coding": [{"system": "x", "code": ["a"]}]},
                 "code": {"text": "frailty"}, "subject": {"reference": "Patient/nobody"}}
    body = assert_outcome(post(client, condition), 400)
    assert located(body)[:2] == [("structure", "Condition.clinicalStatus.coding"),
                                 ("structure", "Condition.verificationStatus.coding[0].code")], body
    rest = located(body)[2:]
    assert ("required", "Condition.category") in rest, body  # the profile needs a category
    assert not any(where.startswith(("Condition.clinicalStatus", "Condition.verificationStatus"))
                   for _, where in rest), body
