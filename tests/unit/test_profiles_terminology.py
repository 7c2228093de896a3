"""The bundled terminology: value set membership, expansion, lookups and concept map translation."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from server.fhir.bindings import BindingChecker
from server.fhir.profiles import NotEnumerable, ProfileValidator, Terminology
from tests.scr_examples import CS, SNOMED, UKCORE_CS

VS = "https://sharedcare.example.org/fhir/ValueSet/"


@pytest.fixture(scope="module")
def terminology() -> Terminology:
    return ProfileValidator.load(external=BindingChecker.load().systems).terminology


def test_every_code_system_has_a_value_set_and_every_binding_resolves(terminology):
    folder = resources.files("profiles") / "structuredefinitions"
    for entry in folder.iterdir():
        for element in json.loads(entry.read_text(encoding="utf-8"))["differential"]["element"]:
            binding = element.get("binding")
            if binding:
                assert terminology.value_set(binding["valueSet"]) is not None, binding
    for url in terminology.code_systems:
        if url.startswith(CS):
            assert terminology.value_set(url.replace("/CodeSystem/", "/ValueSet/")) is not None


def test_uk_core_code_systems_keep_their_national_urls(terminology):
    national = {url for url in terminology.code_systems if url.startswith("https://fhir.hl7.org.uk/")}
    assert national == {UKCORE_CS + name for name in (
        "UKCore-AdmissionMethodEngland", "UKCore-SourceOfAdmissionEngland", "UKCore-DischargeMethodEngland",
        "UKCore-DischargeDestinationEngland", "UKCore-NHSNumberVerificationStatusEngland", "UKCore-PrescriptionType")}
    assert not any(url.startswith("https://fhir.hl7.org.uk/") for url in terminology.value_set_resources)
    emergency = [c.code for c in terminology.expand(VS + "admission-method-england") if c.code.startswith("2")]
    assert emergency == ["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"]


def test_expand_with_filter_on_code_or_display(terminology):
    found = terminology.expand(VS + "cld-service-type", "short term")
    assert [c.code for c in found] == ["Short Term Support: ST-Max", "Short Term Support: Ongoing Low Level",
                                       "Short Term Support: Other Short Term"]
    assert [c.code for c in terminology.expand(VS + "gp-sex", "f")] == ["F"]


def test_whole_external_systems_cannot_be_expanded_but_are_form_checked(terminology):
    with pytest.raises(NotEnumerable):
        terminology.expand(VS + "condition-code")
    condition_codes = terminology.value_set(VS + "condition-code")
    assert condition_codes.contains(SNOMED, "44054006")
    assert not condition_codes.contains(SNOMED, "44054007")
    assert condition_codes.contains("http://hl7.org/fhir/sid/icd-10", "N39.0")
    assert not condition_codes.covers("http://loinc.org")


def test_validate_code_and_display(terminology):
    assert terminology.validate_code(VS + "risk-tier", CS + "risk-tier", "high")[0]
    ok, message, _ = terminology.validate_code(VS + "risk-tier", CS + "risk-tier", "extreme")
    assert not ok and "extreme" in message
    ok, message, _ = terminology.validate_code(VS + "risk-tier", CS + "risk-tier", "high", "Big risk")
    assert not ok and "High risk" in message
    assert terminology.validate_code(VS + "risk-tier", None, "low")[0]


def test_r4_value_sets_come_from_the_binding_data(terminology):
    gender = terminology.value_set("http://hl7.org/fhir/ValueSet/administrative-gender")
    assert gender is not None and gender.contains("http://hl7.org/fhir/administrative-gender", "female")
    assert terminology.value_set("http://example.org/ValueSet/unknown") is None


def test_translate_both_maps(terminology):
    maps = terminology.find_maps(None, CS + "gp-sex", None) or terminology.find_maps(None, VS + "gp-sex", None)
    assert [t.code for t in terminology.translate(maps, CS + "gp-sex", "I")] == ["other"]
    maps = terminology.find_maps("https://sharedcare.example.org/fhir/ConceptMap/cld-accommodation-to-residence-finding",
                                 None, None)
    found = terminology.translate(maps, CS + "cld-accommodation-status", "Registered nursing home")
    assert [(t.system, t.code, t.equivalence) for t in found] == [(SNOMED, "160734000", "equivalent")]
    assert terminology.translate(maps, CS + "cld-accommodation-status", "Tenant - private landlord") == []


def test_every_translation_target_is_a_valid_code(terminology):
    for concept_map in terminology.concept_maps.values():
        for group in concept_map["group"]:
            target = terminology.value_set(concept_map["targetUri"])
            for element in group["element"]:
                assert terminology.value_set(concept_map["sourceUri"]).contains(group["source"], element["code"])
                for mapped in element["target"]:
                    assert target.contains(group["target"], mapped["code"]), mapped


def test_value_sets_including_value_sets_and_exclusions():
    system = "http://example.org/cs"
    code_system = {"url": system, "name": "Cs", "content": "complete",
                   "concept": [{"code": "a", "display": "A", "concept": [{"code": "a1", "display": "A one"}]},
                               {"code": "b", "display": "B"}]}
    first = {"url": "http://example.org/vs/1", "compose": {"include": [{"valueSet": ["http://example.org/vs/2"]}]}}
    second = {"url": "http://example.org/vs/2", "compose": {
        "include": [{"system": system}, {"valueSet": ["http://example.org/vs/1"]}],
        "exclude": [{"system": system, "concept": [{"code": "b"}]}]}}
    terminology = Terminology([code_system], [first, second], [])
    assert [c.code for c in terminology.expand("http://example.org/vs/1")] == ["a", "a1"]
    assert terminology.value_set("http://example.org/vs/2|1.0").contains(system, "a1")
    assert not terminology.value_set("http://example.org/vs/2").contains(system, "b")
