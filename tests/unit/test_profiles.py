"""Every profile accepts its valid examples and refuses, naming it, each instance that breaks one constraint."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from server.fhir.bindings import BindingChecker
from server.fhir.outcome import FhirError
from server.fhir.profiles import ProfileValidator
from server.fhir.types import TypeRegistry
from server.fhir.validate import ResourceValidator
from tests.scr_cases import Case, cases
from tests.scr_examples import SD, all_valid, examples

CASES = cases()
EXAMPLES = examples()


@pytest.fixture(scope="module")
def validator() -> ResourceValidator:
    bindings = BindingChecker.load()
    return ResourceValidator(TypeRegistry.load(), bindings, ProfileValidator.load(external=bindings.systems))


def definitions() -> list[dict]:
    folder = resources.files("profiles") / "structuredefinitions"
    return [json.loads(f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".json")]


def test_every_profile_has_an_example():
    profiles = {d["id"] for d in definitions() if d["type"] != "Extension"}
    assert profiles == set(EXAMPLES)
    assert len(profiles) == 18


@pytest.mark.parametrize(("name", "resource"), all_valid(), ids=lambda v: v if isinstance(v, str) else "")
def test_valid_example_conforms(validator, name, resource):
    assert resource["meta"]["profile"] == [SD + name]
    validator.validate(resource)
    errors = [i for i in validator.profiles.check(resource) if i.severity == "error"]
    assert errors == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_breaking_one_constraint_is_refused_naming_it(validator, case: Case):
    resource = copy.deepcopy(EXAMPLES[case.profile])
    case.mutate(resource)
    assert resource != EXAMPLES[case.profile], "the case must change the example"
    with pytest.raises(FhirError) as raised:
        validator.validate(resource)
    assert raised.value.status == 422, raised.value.issues
    named = [i for i in raised.value.issues if case.label in i.diagnostics]
    assert named, (case.label, [i.diagnostics for i in raised.value.issues])
    assert any(i.code == case.issue_code and i.severity == "error" for i in named), named
    assert all(i.expression and i.expression[0].startswith(resource["resourceType"]) for i in named)


def constraints_of(definition: dict) -> set[tuple[str, str, str]]:
    """(profile, kind, label) of every constraint a differential adds, as the cases name them.

    An extension definition's constraints are counted for every profile that slices the extension in;
    left out: the root of an extension (its cardinality is the slice's) and the fixed `url` of an
    extension and the fixed `system` of an identifier slice (they are what selects the slice).
    """
    label = f"{definition['id']} " if definition["type"] == "Extension" else ""
    snapshot = {e["id"]: e for e in definition["snapshot"]["element"]}
    found = set()
    for element in definition["differential"]["element"]:
        element_id = element["id"]
        base = snapshot[element_id].get("base", {})
        last = element_id.rsplit(".", 1)[-1]
        discriminator = last in ("url", "system") and (":" in element_id or label)
        for constraint in element.get("constraint", []):
            found.add(("invariant", constraint["key"]))
        if (label and "." not in element_id) or discriminator:
            continue
        if "sliceName" in element:
            if element.get("min", 0) > 0:
                found.add(("min", label + element_id))
            if element.get("max", "*") != "*":
                found.add(("max", label + element_id))
        else:
            if element.get("min", 0) > int(base.get("min", 0)):
                found.add(("min", label + element_id))
            if "max" in element and element["max"] != base.get("max"):
                found.add(("max", label + element_id))
        if any(key.startswith(("fixed", "pattern")) for key in element):
            found.add(("fixed", label + element_id))
        binding = element.get("binding", {})
        if binding.get("strength") in ("required", "extensible"):
            found.add(("binding", label + element_id))
        if last.split(":")[0].endswith("[x]") and "type" in element:
            found.add(("type", label + element_id))
        targets = [t for entry in element.get("type", []) for t in entry.get("targetProfile", [])]
        if targets:
            found.add(("target", label + element_id))
    return {(definition["id"], kind, name) for kind, name in found}


def test_every_constraint_has_a_case():
    by_id = {d["id"]: d for d in definitions()}
    wanted = set()
    for definition in by_id.values():
        if definition["type"] == "Extension":
            continue
        wanted |= constraints_of(definition)
        for element in definition["differential"]["element"]:
            for entry in element.get("type", []):
                for profile in entry.get("profile", []):
                    name = profile.rsplit("/", 1)[-1]
                    if name in by_id:
                        wanted |= {(definition["id"], kind, label)
                                   for _, kind, label in constraints_of(by_id[name])}
    covered = {(case.profile, case.kind, case.label) for case in CASES}
    missing = sorted(wanted - covered)
    assert not missing, missing
    assert len(wanted) > 150


def test_profile_for_another_type_is_refused(validator):
    resource = copy.deepcopy(EXAMPLES["SCR-Observation"])
    resource["meta"]["profile"] = [SD + "SCR-Patient"]
    with pytest.raises(FhirError) as raised:
        validator.validate(resource)
    assert raised.value.status == 422
    assert "a profile for Patient" in raised.value.message


def test_unknown_claimed_profile_is_accepted_unchecked(validator):
    resource = copy.deepcopy(EXAMPLES["SCR-Patient"])
    del resource["birthDate"]
    resource["meta"]["profile"] = ["https://example.org/fhir/StructureDefinition/SomeoneElsesPatient"]
    assert validator.validate(resource) == "Patient"
    assert validator.profiles.check(resource) == []


def test_structure_errors_come_first_as_400(validator):
    resource = copy.deepcopy(EXAMPLES["SCR-Patient"])
    resource["gender"] = "bogus"
    del resource["birthDate"]
    with pytest.raises(FhirError) as raised:
        validator.validate(resource)
    assert raised.value.status == 400


def test_extensible_binding_warns_for_text_only_concepts(validator):
    resource = copy.deepcopy(EXAMPLES["SCR-MedicationRequest"])
    validator.validate(resource)
    warnings = validator.profiles.check(resource)
    assert [w.severity for w in warnings] == ["warning"]
    assert "extensible value set" in warnings[0].diagnostics
    assert warnings[0].expression == ("MedicationRequest.medication.ofType(CodeableConcept)",)


def test_extensible_binding_accepts_codes_of_other_systems_with_a_warning(validator):
    resource = copy.deepcopy(EXAMPLES["SCR-PractitionerRole"])
    resource["code"] = [{"coding": [{"system": "http://snomed.info/sct", "code": "768730001"}]}]
    validator.validate(resource)
    assert [w.severity for w in validator.profiles.check(resource)] == ["warning"]


def test_mandatory_profiles_apply_without_a_claim():
    bindings = BindingChecker.load()
    mandatory = ProfileValidator.load(mandatory=f"Patient={SD}SCR-Patient", external=bindings.systems)
    validator = ResourceValidator(TypeRegistry.load(), bindings, mandatory)
    resource = copy.deepcopy(EXAMPLES["SCR-Patient"])
    del resource["meta"]
    validator.validate(resource)
    del resource["birthDate"]
    with pytest.raises(FhirError) as raised:
        validator.validate(resource)
    assert "Patient.birthDate" in raised.value.message
    other = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    assert validator.validate(other) == "Observation"


def test_care_record_keyword_mandates_every_profile_and_a_claim_where_there_are_several():
    bindings = BindingChecker.load()
    profiles = ProfileValidator.load(mandatory="care-record", external=bindings.systems)
    assert set(profiles.mandatory) == {"Patient", "Practitioner", "PractitionerRole", "Organization", "CareTeam",
                                       "EpisodeOfCare", "CarePlan", "Condition", "Encounter", "RiskAssessment",
                                       "Flag", "Observation", "MedicationStatement", "MedicationRequest"}
    encounter = copy.deepcopy(EXAMPLES["SCR-Encounter-GPContact"])
    assert profiles.check(encounter) == []
    del encounter["meta"]
    issues = profiles.check(encounter)
    assert len(issues) == 1 and "must claim one of the profiles" in issues[0].diagnostics
    patient = copy.deepcopy(EXAMPLES["SCR-Patient"])
    del patient["meta"], patient["name"]
    assert any("Patient.name" in i.diagnostics for i in profiles.check(patient))


@pytest.mark.parametrize("setting", ["Patient=https://example.org/x", f"Observation={SD}SCR-Patient"])
def test_bad_mandatory_setting_is_refused(setting):
    with pytest.raises(ValueError, match="MANDATORY_PROFILES"):
        ProfileValidator.load(mandatory=setting)


def test_project_base_is_rewritten():
    base = "https://care.example.net/r4"
    profiles = ProfileValidator.load(base=base)
    assert f"{base}/StructureDefinition/SCR-Patient" in profiles.profiles
    assert not any(url.startswith(SD) for url in profiles.profiles)
    service = json.loads(json.dumps(EXAMPLES["SCR-EpisodeOfCare-SocialCareService"]).replace(
        "https://sharedcare.example.org/fhir", base))
    assert [i for i in profiles.check(service) if i.severity == "error"] == []
    assert profiles.terminology.value_set(f"{base}/ValueSet/cld-service-type") is not None
    original = copy.deepcopy(EXAMPLES["SCR-EpisodeOfCare-SocialCareService"])
    original["meta"]["profile"] = [f"{base}/StructureDefinition/SCR-EpisodeOfCare-SocialCareService"]
    issues = profiles.check(original)
    assert any("scr-scs-1" in i.diagnostics for i in issues)  # the SWIFT id system follows the base too


@pytest.mark.parametrize("base", ["not a url", "https://x.org/fhir with space", 'https://x.org/"quote"'])
def test_bad_project_base_is_refused(base):
    with pytest.raises(ValueError, match="PROJECT_BASE_URI"):
        ProfileValidator.load(base=base)
