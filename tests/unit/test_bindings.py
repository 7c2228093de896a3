"""Tests for the required-binding checker (server/fhir/bindings.py) and its generated data."""

from __future__ import annotations

import copy
import importlib.util
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from server.fhir.bindings import BindingChecker, BindingIssue
from tests.shared import PROJECT, SHARED

EXAMPLES = SHARED / "fhir-r4" / "examples"
SYNTHEA = SHARED / "data" / "synthea"
ACCEPTED_EXAMPLES = 688
BOGUS = "zz-bogus"

REQUEST_STATUS = "http://hl7.org/fhir/ValueSet/request-status|4.0.1"
ACTIVITY_STATUS = "http://hl7.org/fhir/ValueSet/care-plan-activity-status|4.0.1"
CONDITION_CLINICAL = "http://hl7.org/fhir/ValueSet/condition-clinical|4.0.1"
CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"

needs_examples = pytest.mark.usefixtures("shared_dir")  # the run stops, naming it, when the folder is absent


@pytest.fixture(scope="module")
def checker() -> BindingChecker:
    return BindingChecker.load()


def only_issue(checker: BindingChecker, resource: dict[str, Any]) -> BindingIssue:
    issues = checker.check(resource)
    assert len(issues) == 1, issues
    return issues[0]


def care_plan(**fields: Any) -> dict[str, Any]:
    base = {"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": {"reference": "P/1"}}
    return base | fields


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1"} | fields


def clinical_status(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": list(codings)} if codings else {}
    if text:
        concept["text"] = text
    return {
        "resourceType": "Condition",
        "clinicalStatus": concept,
        "subject": {"reference": "Patient/p1"},
    }


# --- code elements ---------------------------------------------------------------------------


def test_bogus_careplan_status_is_one_issue(checker: BindingChecker) -> None:
    issue = only_issue(checker, care_plan(status="bogus"))
    assert issue.expression == "CarePlan.status"
    assert issue.value == "bogus"
    assert issue.valueset == REQUEST_STATUS
    assert issue.message == (f"Code 'bogus' is not in the required value set {REQUEST_STATUS} for CarePlan.status")


@pytest.mark.parametrize("status", ["draft", "active", "on-hold", "revoked", "completed", "unknown"])
def test_valid_careplan_status_passes(checker: BindingChecker, status: str) -> None:
    assert checker.check(care_plan(status=status)) == []


def test_codes_are_case_sensitive(checker: BindingChecker) -> None:
    assert only_issue(checker, care_plan(status="Active")).value == "Active"


def test_nested_backbone_code(checker: BindingChecker) -> None:
    activity = [{"detail": {"status": "completed"}}, {"detail": {"status": "bogus"}}]
    issue = only_issue(checker, care_plan(activity=activity))
    assert issue.expression == "CarePlan.activity[1].detail.status"
    assert issue.valueset == ACTIVITY_STATUS


def test_datatype_code_in_repeating_element(checker: BindingChecker) -> None:
    names = [{"use": "official", "family": "A"}, {"use": "bogus", "family": "B"}]
    issue = only_issue(checker, patient(name=names))
    assert issue.expression == "Patient.name[1].use"
    assert issue.valueset == "http://hl7.org/fhir/ValueSet/name-use|4.0.1"


def test_datatype_codes_in_contact_point_and_address(checker: BindingChecker) -> None:
    resource = patient(telecom=[{"system": "pigeon", "value": "x"}], address=[{"use": "home", "type": "cave"}])
    assert sorted(i.expression for i in checker.check(resource)) == [
        "Patient.address[0].type",
        "Patient.telecom[0].system",
    ]


def test_choice_element_quantity_comparator(checker: BindingChecker) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": 1, "comparator": "<<"},
    }
    issue = only_issue(checker, observation)
    assert issue.expression == "Observation.value.ofType(Quantity).comparator"
    assert issue.valueset == "http://hl7.org/fhir/ValueSet/quantity-comparator|4.0.1"


def test_choice_element_in_timing_and_extension(checker: BindingChecker) -> None:
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": [
            {"timing": {"repeat": {"boundsDuration": {"value": 1, "comparator": "~"}, "periodUnit": "fortnight"}}}
        ],
        "extension": [{"url": "http://example.org/x", "valueQuantity": {"value": 2, "comparator": "!"}}],
    }
    assert sorted(i.expression for i in checker.check(request)) == [
        "MedicationRequest.dosageInstruction[0].timing.repeat.bounds.ofType(Duration).comparator",
        "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit",
        "MedicationRequest.extension[0].value.ofType(Quantity).comparator",
    ]


def test_content_reference_recursion(checker: BindingChecker) -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "item": [
                    {"linkId": "1.1", "type": "string"},
                    {"linkId": "1.2", "type": "essay", "item": [{"linkId": "1.2.1", "type": "boolean"}]},
                ],
            }
        ],
    }
    issue = only_issue(checker, questionnaire)
    assert issue.expression == "Questionnaire.item[0].item[1].type"
    assert issue.valueset == "http://hl7.org/fhir/ValueSet/item-type|4.0.1"


def test_repeating_code_element(checker: BindingChecker) -> None:
    allergy = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/p1"},
        "category": ["food", "weather"],
    }
    assert only_issue(checker, allergy).expression == "AllergyIntolerance.category[1]"


def test_contained_resource(checker: BindingChecker) -> None:
    contained = [{"resourceType": "Patient", "id": "a", "gender": "female"}, patient(gender="bogus")]
    issue = only_issue(checker, care_plan(contained=contained))
    assert issue.expression == "CarePlan.contained[1].ofType(Patient).gender"
    assert issue.valueset == "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"


def test_bundle_entry_resource(checker: BindingChecker) -> None:
    entries = [{"resource": patient(gender="male")}, {"resource": care_plan()}, {"resource": patient(gender="x")}]
    issue = only_issue(checker, {"resourceType": "Bundle", "type": "collection", "entry": entries})
    assert issue.expression == "Bundle.entry[2].resource.ofType(Patient).gender"


def test_bundle_own_code_and_nested_bundle(checker: BindingChecker) -> None:
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": care_plan(status="x")}]}
    bundle = {"resourceType": "Bundle", "type": "pile", "entry": [{"resource": inner}]}
    assert sorted(i.expression for i in checker.check(bundle)) == [
        "Bundle.entry[0].resource.ofType(Bundle).entry[0].resource.ofType(CarePlan).status",
        "Bundle.type",
    ]


def test_parameters_resource_and_part(checker: BindingChecker) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "a", "part": [{"name": "b", "resource": patient(gender="bogus")}]},
        ],
    }
    issue = only_issue(checker, parameters)
    assert issue.expression == "Parameters.parameter[0].part[0].resource.ofType(Patient).gender"


def test_primitive_extensions_and_nulls_are_ignored(checker: BindingChecker) -> None:
    allergy = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/p1"},
        "category": [None, "food"],
        "_category": [{"extension": [{"url": "http://example.org/x", "valueString": "y"}]}, None],
        "_criticality": {"id": "bogus"},
    }
    assert checker.check(allergy) == []


def test_unenumerable_and_non_required_bindings_are_not_checked(checker: BindingChecker) -> None:
    resource = patient(language="zz-not-a-language", photo=[{"contentType": "not/a-mime-type"}])
    assert checker.check(resource) == []
    assert checker.codes("http://hl7.org/fhir/ValueSet/mimetypes|4.0.1") is None


def test_unknown_resource_type_is_ignored(checker: BindingChecker) -> None:
    assert checker.check({"resourceType": "MedicinalProduct", "status": "bogus"}) == []


# --- CodeableConcept / Coding ----------------------------------------------------------------


def test_codeable_concept_valid_with_translation(checker: BindingChecker) -> None:
    resource = clinical_status(
        {"system": "http://snomed.info/sct", "code": "55561003"},
        {"system": CLINICAL_SYSTEM, "code": "active"},
    )
    assert checker.check(resource) == []


def test_codeable_concept_bad_code_in_value_set_system(checker: BindingChecker) -> None:
    issue = only_issue(checker, clinical_status({"system": CLINICAL_SYSTEM, "code": "bogus"}))
    assert issue.expression == "Condition.clinicalStatus.coding[0].code"
    assert issue.value == "bogus"
    assert issue.valueset == CONDITION_CLINICAL


def test_codeable_concept_without_value_set_coding(checker: BindingChecker) -> None:
    issue = only_issue(checker, clinical_status({"system": "http://example.org", "code": "active"}))
    assert issue.expression == "Condition.clinicalStatus"
    assert issue.value == "active"
    no_system = only_issue(checker, clinical_status({"code": "active"}))
    assert no_system.expression == "Condition.clinicalStatus"
    text_only = only_issue(checker, clinical_status(text="Active"))
    assert text_only.expression == "Condition.clinicalStatus"


# --- codes() ----------------------------------------------------------------------------------


def test_codes_for_value_set(checker: BindingChecker) -> None:
    gender = {"male", "female", "other", "unknown"}
    assert checker.codes("http://hl7.org/fhir/ValueSet/administrative-gender") == gender
    assert checker.codes("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1") == gender
    assert checker.codes("http://example.org/ValueSet/none") is None


def test_codes_include_nested_concepts(checker: BindingChecker) -> None:
    # condition-ver-status nests 'provisional' and 'differential' under 'unconfirmed'.
    codes = checker.codes("http://hl7.org/fhir/ValueSet/condition-ver-status")
    assert codes is not None
    assert {"unconfirmed", "provisional", "differential", "confirmed"} <= codes


# --- against the shared R4 examples -------------------------------------------------------------


def accepted_examples() -> Iterator[tuple[str, dict[str, Any]]]:
    from fhir.resources import R4B

    for path in sorted(EXAMPLES.glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        try:
            R4B.get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except (ValueError, TypeError):
            continue
        yield path.name, resource


@pytest.mark.slow
@needs_examples
def test_all_accepted_examples_have_no_issues(checker: BindingChecker) -> None:
    checked = 0
    failures: dict[str, list[BindingIssue]] = {}
    for name, resource in accepted_examples():
        checked += 1
        issues = checker.check(resource)
        if issues:
            failures[name] = issues
    assert checked == ACCEPTED_EXAMPLES
    assert failures == {}


def string_leaves(node: Any, trail: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if not key.startswith("_") and key not in ("resourceType", "div"):
                yield from string_leaves(value, (*trail, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_leaves(value, (*trail, index))
    elif isinstance(node, str):
        yield trail


def replaced(resource: dict[str, Any], trail: tuple[Any, ...], value: str) -> dict[str, Any]:
    copied = copy.deepcopy(resource)
    node: Any = copied
    for step in trail[:-1]:
        node = node[step]
    node[trail[-1]] = value
    return copied


@pytest.mark.slow
@needs_examples
@pytest.mark.parametrize(
    "example",
    ["CarePlan-example.json", "Patient-example.json", "Questionnaire-f201.json", "Bundle-bundle-example.json"],
)
def test_mutated_examples_point_at_the_bogus_code(checker: BindingChecker, example: str) -> None:
    """Replace each string of an example in turn; every issue's FHIRPath must select the bad value."""
    import fhirpathpy
    from fhirpathpy.models import models

    resource = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    flagged = 0
    for trail in string_leaves(resource):
        mutated = replaced(resource, trail, BOGUS)
        for issue in checker.check(mutated):
            flagged += 1
            selected = fhirpathpy.evaluate(mutated, issue.expression, {}, models["r4"])
            assert selected == [BOGUS] or (selected and isinstance(selected[0], dict)), issue
    assert flagged >= 3


# --- generated data ----------------------------------------------------------------------------


@needs_examples
def test_vendored_bindings_match_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("build_r4_data", PROJECT / "tools" / "build_r4_data.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    package = generator.read_package(SHARED / generator.PACKAGE)
    types = generator.build_resource_types(package["StructureDefinition"])
    document, _ = generator.build_bindings(package, types["supported"])
    vendored = json.loads((PROJECT / "profiles" / "r4" / "bindings.json").read_text(encoding="utf-8"))
    assert vendored == json.loads(json.dumps(document))


@pytest.mark.slow
@needs_examples
def test_synthea_resources_have_no_issues(checker: BindingChecker) -> None:
    archives = sorted(SYNTHEA.glob("*.tar.gz"))
    assert archives, f"no Synthea archives in {SYNTHEA}"
    checked = 0
    failures: dict[str, list[BindingIssue]] = {}
    for archive in archives:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() and member.name.endswith(".json") else None
                if handle is None:
                    continue
                for entry in json.load(handle).get("entry", []):
                    checked += 1
                    issues = checker.check(entry["resource"])
                    if issues:
                        failures[f"{member.name}#{entry['resource'].get('id')}"] = issues
    assert checked > 1000
    assert failures == {}
