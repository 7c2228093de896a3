"""The mapping engine without a database: conversions, row checks, templates and spec errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mappings import Mappings, SpecError, convert
from mappings.engine import FileMapper
from mappings.spec import load_systems, parse

ENV = {"org": "Y90001", "extract_date": "2026-10", "source": "gp", "provenance": "Provenance/p1"}


def raw_spec(source: str, name: str) -> dict[str, Any]:
    from importlib import resources

    return yaml.safe_load(resources.files("mappings").joinpath(source, name).read_text("utf-8"))


def mapper_for(mappings: Mappings, raw: dict[str, Any], env: dict[str, Any] | None = None) -> FileMapper:
    spec = parse("test.yaml", raw, mappings.terminology, load_systems())
    return FileMapper(spec, mappings.terminology, {"base": mappings.terminology.base, **(env or ENV)})


def test_conversions() -> None:
    assert convert.nhs_number("943 476 5919") == "9434765919"
    with pytest.raises(ValueError, match="modulus 11"):
        convert.nhs_number("9434765918")
    assert [convert.icd10(c) for c in ("N390", "R11X", "S7200", "E86X", "W19X", "I10X")] == [
        "N39.0", "R11", "S72.00", "E86", "W19", "I10"]
    with pytest.raises(ValueError):
        convert.icd10("7200")
    assert convert.fhir_date("30/12/1939", "DD/MM/YYYY") == "1939-12-30"
    with pytest.raises(ValueError, match="not a real date"):
        convert.fhir_date("30/02/2026", "DD/MM/YYYY")
    assert convert.fhir_datetime("12/10/2026 09:30", "DD/MM/YYYY HH:MM") == "2026-10-12T09:30:00+01:00"
    assert convert.fhir_datetime("2026-01-12T02:14", "YYYY-MM-DDTHH:MM") == "2026-01-12T02:14:00+00:00"
    assert convert.fhir_datetime("2026-03-29T00:59", "YYYY-MM-DDTHH:MM").endswith("+00:00")  # BST from 01:00
    assert convert.fhir_datetime("2026-03-29T02:00", "YYYY-MM-DDTHH:MM").endswith("+01:00")
    assert convert.fhir_datetime("2026-10-25T00:30", "YYYY-MM-DDTHH:MM").endswith("+01:00")
    assert convert.fhir_datetime("2026-10-25T02:00", "YYYY-MM-DDTHH:MM").endswith("+00:00")
    assert (convert.decimal("241.50"), convert.decimal("7")) == (241.5, 7)
    assert convert.snomed("160689007") == "160689007"
    with pytest.raises(ValueError):
        convert.snomed("160689008")


def test_row_checks_report_every_problem_by_column(mappings: Mappings) -> None:
    mapper = mappings.mapper("swift", "services.csv", {**ENV, "org": "E0900001"})
    values, errors = mapper.check({"Service_ID": "SV1", "Person_ID": "SW1", "Service_Type": "Gardening",
                                   "Service_Start_Date": "31/04/2026", "Status": "Ended",
                                   "Last_Modified": "01/05/2026 10:00"})
    assert values is None
    assert set(errors) == {"Service_Type", "Service_Component", "Service_Start_Date"}
    assert "unknown code 'Gardening'" in errors["Service_Type"][0]
    assert errors["Service_Component"] == ["a value is required"]
    values, errors = mapper.check({"Service_ID": "SV1", "Person_ID": "SW1", "Service_Type": "Long Term Support: "
                                   "Community", "Service_Component": "Meals", "Service_Start_Date": "01/04/2026",
                                   "Status": "Ended", "Last_Modified": "01/05/2026 10:00"})
    assert errors == {"Service_End_Date": ["a value is required when Status is Ended"]}


def test_a_row_maps_to_profiled_resources(mappings: Mappings) -> None:
    mapper = mappings.mapper("hospital", "admissions.csv", {**ENV, "org": "RX999", "source": "hospital"})
    values, errors = mapper.check({"SPELL_ID": "S1", "NHS_NUMBER": "943 476 5919", "PROCODE": "RX999",
                                   "ADMIDATE": "2026-02-03", "ADMIMETH": "21", "DISDATE": "2026-02-16",
                                   "DISMETH": "2", "DIAG_4_01": "S7200", "DIAG_4_02": "W19X"})
    assert errors == {} and values is not None
    refs = {"patient": {"reference": "Patient/p"}, "provider": {"reference": "Organization/o"}}
    spell, first, second = mapper.map(values, refs)
    base = mappings.terminology.base
    assert spell.resource["meta"] == {"profile": [f"{base}/StructureDefinition/SCR-Encounter-HospitalSpell"],
                                      "source": "Provenance/p1"}
    assert spell.identity == (f"{base}/Id/hospital-spell-id/RX999", "S1")
    assert spell.resource["identifier"][0] == {"system": f"{base}/Id/hospital-spell-id/RX999", "value": "S1"}
    assert [d["condition"]["reference"] for d in spell.resource["diagnosis"]] == [first.full_url, second.full_url]
    assert [c.resource["code"]["coding"][0]["code"] for c in (first, second)] == ["S72.00", "W19"]
    assert first.resource["encounter"] == {"reference": spell.full_url}
    discharge = spell.resource["hospitalization"]["extension"][1]["valueCodeableConcept"]["coding"][0]
    assert discharge["code"] == "6"  # CDS code 2 through hes-discharge-method-to-ukcore-england
    assert "dischargeDisposition" not in spell.resource["hospitalization"]  # empty columns leave nothing


def test_mapping_a_new_column_needs_no_python(mappings: Mappings) -> None:
    raw = copy.deepcopy(raw_spec("swift", "events.yaml"))
    raw["columns"]["Location"] = {"values": ["Home", "Office"]}
    raw["resources"][0]["template"]["location"] = [{"$needs": "Location", "location": {"display": "$Location"}}]
    mapper = mapper_for(mappings, raw, {**ENV, "org": "E0900001"})
    row = {"Event_ID": "EV1", "Person_ID": "SW1", "Event_Type": "Review", "Event_Start_Date": "08/10/2026",
           "Location": "Home"}
    values, errors = mapper.check(row)
    assert errors == {} and values is not None
    [event] = mapper.map(values, {"client": {"reference": "Patient/p"}})
    assert event.resource["location"] == [{"location": {"display": "Home"}}]
    assert event.resource["status"] == "in-progress" and event.resource["class"]["code"] == "HH"
    _values, errors = mapper.check({**row, "Location": "Moon"})
    assert "unknown code 'Moon'" in errors["Location"][0]


def test_a_new_plausibility_rule_needs_no_python(mappings: Mappings) -> None:
    raw = copy.deepcopy(raw_spec("swift", "events.yaml"))
    raw["rules"].append({"column": "Event_End_Date", "not-after": ["$extract_date"]})
    mapper = mapper_for(mappings, raw, {**ENV, "org": "E0900001", "extract_date": "2026-10-31"})
    row = {"Event_ID": "EV1", "Person_ID": "SW1", "Event_Type": "Review", "Event_Start_Date": "08/10/2026",
           "Event_End_Date": "31/10/2026"}
    assert mapper.check(row)[1] == {}
    values, errors = mapper.check({**row, "Event_End_Date": "01/11/2026"})
    assert values is None and errors == {"Event_End_Date": ["2026-11-01 is after the extract date (2026-10-31)"]}
    values, errors = mapper.check({**row, "Event_Start_Date": "09/11/2026", "Event_End_Date": "08/11/2026"})
    assert errors == {"Event_Start_Date": ["2026-11-09 is after the extract date (2026-10-31)"],
                      "Event_End_Date": ["2026-11-08 is before Event_Start_Date (2026-11-09)",
                                         "2026-11-08 is after the extract date (2026-10-31)"]}


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["resources"][0]["template"].update({"status": {"$frobnicate": 1}}), "unknown operator $frobnicate"),
    (lambda r: r["columns"]["Team"].update({"colour": "red"}), "unknown keys ['colour']"),
    (lambda r: r["columns"]["Team"].update({"type": "colour"}), "unknown type 'colour'"),
    (lambda r: r["resources"][0].update({"identity": {"system": "nowhere", "value": "$Event_ID"}}),
     "identity system 'nowhere'"),
    (lambda r: r["resources"][0]["template"].update({"class": {"$map": "no-such-map", "from": "$Team"}}),
     "no ConceptMap named 'no-such-map'"),
    (lambda r: r.update({"key": "Missing"}), "key column 'Missing'"),
    (lambda r: r.update({"rules": [{"column": "Team", "not-after": "$extract_date"}]}),
     "rules[0]: not-after does not apply to a string column"),
    (lambda r: r.update({"rules": [{"column": "Event_End_Date", "not-before": "$Team"}]}),
     "rules[0]: $Team is not a date or date-time column"),
    (lambda r: r.update({"rules": [{"column": "Event_End_Date", "not-before": "Event_Start_Date"}]}),
     "an operand is $column or $extract_date"),
    (lambda r: r.update({"rules": [{"column": "Nowhere", "min": 0}]}), "rules[0]: unknown column 'Nowhere'"),
    (lambda r: r.update({"rules": [{"column": "Event_End_Date", "after": "$Event_Start_Date"}]}),
     "rules[0]: unknown keys ['after']"),
])
def test_spec_errors_name_the_file_and_the_place(mappings: Mappings, change: Any, message: str) -> None:
    raw = copy.deepcopy(raw_spec("swift", "events.yaml"))
    change(raw)
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]").replace("$", r"\$")):
        mapper_for(mappings, raw)


def test_the_project_base_is_configurable() -> None:
    other = Mappings.load("https://care.example.net/fhir")
    mapper = other.mapper("swift", "clients.csv", {**ENV, "org": "E0900001"})
    values, _ = mapper.check({"Person_ID": "SW1", "Family_Name": "Reed", "Given_Name": "Sam",
                              "Date_Of_Birth": "17/08/1960", "Gender": "Male",
                              "Accommodation_Status": "Registered nursing home"})
    assert values is not None
    patient, accommodation = mapper.map(values, {})
    assert patient.resource["identifier"] == [{"system": "https://care.example.net/fhir/Id/swift-person-id/E0900001",
                                               "value": "SW1"}]
    codings = accommodation.resource["valueCodeableConcept"]["coding"]
    assert codings[0]["system"] == "https://care.example.net/fhir/CodeSystem/cld-accommodation-status"
    assert codings[1] == {"system": "http://snomed.info/sct", "code": "160734000", "display": "Lives in a nursing home"}
