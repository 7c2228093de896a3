"""Search parameter types x modifiers x prefixes on small fixtures, with expectations worked out by hand.

Every fixture carries a tag unique to this module, and every search adds `_tag=` so only these
resources can match.
"""

from __future__ import annotations

import uuid

import orjson
import pytest

from tests.support import FHIR_JSON

RUN = f"search-{uuid.uuid4().hex[:10]}"
TAG = f"http://example.org/test-run|{RUN}"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"


def tagged(resource: dict) -> dict:
    return {**resource, "meta": {"tag": [{"system": "http://example.org/test-run", "code": RUN}]}}


@pytest.fixture(scope="module")
def ids(app) -> dict[str, str]:
    """Create the fixtures once; map each fixture name to its server id."""
    client = app.test_client()
    created: dict[str, str] = {}

    def put(name: str, resource: dict) -> None:
        resource = tagged({**resource, "id": f"{RUN}-{name}"})
        response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=orjson.dumps(resource),
                              content_type=FHIR_JSON)
        assert response.status_code in (200, 201), (name, response.get_json())
        created[name] = resource["id"]

    # subjects referred to below (untagged, so no search here finds them): references must resolve
    for target in ({"resourceType": "Patient", "id": f"{RUN}-subject"},
                   {"resourceType": "Group", "id": f"{RUN}-g", "type": "person", "actual": True}):
        assert client.put(f"/fhir/{target['resourceType']}/{target['id']}", data=orjson.dumps(target),
                          content_type=FHIR_JSON).status_code == 201
    # number: RiskAssessment.prediction.probability
    risk = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": f"Patient/{RUN}-subject"}}
    for name, probability in (("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p90", 0.9)):
        put(name, {**risk, "prediction": [{"probabilityDecimal": probability}]})
    put("pnone", risk)
    # date: Observation.effective[x]
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "date fixture"}}
    put("jan1", {**observation, "effectiveDateTime": "2020-01-01"})
    put("jun15", {**observation, "effectiveDateTime": "2020-06-15T10:00:00Z"})
    put("march", {**observation, "effectivePeriod": {"start": "2020-03-01", "end": "2020-03-31"}})
    put("y2021", {**observation, "effectiveDateTime": "2021"})
    put("y1990", {**observation, "effectiveDateTime": "1990-07-01"})
    put("open", {**observation, "effectivePeriod": {"start": "2019-12-01"}})
    # string: Patient.name
    put("hardy", {"resourceType": "Patient", "name": [{"family": "Hardy", "given": ["Jean"]}], "active": True,
                  "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                       "code": "MR"}]},
                                  "system": "urn:hospital", "value": "MRN-1"}],
                  "birthDate": "1934-03-14", "gender": "female"})
    put("hardy2", {"resourceType": "Patient", "name": [{"family": "Hårdy", "given": ["Zoë"]}], "active": False,
                   "birthDate": "1950-01-01", "gender": "female"})
    put("hardwick", {"resourceType": "Patient", "name": [{"family": "hardwick", "given": ["Alan"]}],
                     "birthDate": "1960-01-01", "gender": "male"})
    put("obrien", {"resourceType": "Patient", "name": [{"family": "O'Brien", "given": ["Sean"]}],
                   "birthDate": "1934-03-14", "gender": "male"})
    put("noname", {"resourceType": "Patient", "gender": "unknown"})
    # token: Condition.code
    condition = {"resourceType": "Condition", "subject": {"reference": f"Patient/{RUN}-hardy"}}
    put("diabetes", {**condition, "code": {"coding": [{"system": SNOMED, "code": "44054006"}],
                                           "text": "Diabetes type 2"},
                     "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                    "code": "active"}]}})
    put("e11", {**condition, "code": {"coding": [{"system": ICD10, "code": "E11"}]}})
    put("hf", {**condition, "code": {"coding": [{"system": SNOMED, "code": "84114007", "display": "Heart failure"}]}})
    put("local", {**condition, "code": {"coding": [{"code": "LOCAL1"}]}})
    put("nocode", {**condition})
    # reference: Observation.subject
    put("subj1", {**observation, "subject": {"reference": f"Patient/{RUN}-hardy"}})
    put("subj2", {**observation, "subject": {"reference": f"Patient/{RUN}-obrien"}})
    put("remote", {**observation, "subject": {"reference": "http://other.example.org/fhir/Patient/77"}})
    put("group", {**observation, "subject": {"reference": f"Group/{RUN}-g"}})
    put("logical", {**observation, "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                                              "value": "9991000003"}}})
    # quantity: Observation.value[x]
    put("q54", {**observation, "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}})
    put("q120", {**observation, "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}})
    put("q54mg", {**observation, "valueQuantity": {"value": 5.4, "unit": "mg"}})
    # composite: Observation code + value, and components
    put("glucose", {**observation, "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
                    "valueQuantity": {"value": 130, "system": UCUM, "code": "mg/dL"}})
    put("bp", {**observation, "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
               "component": [
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": 150, "system": UCUM, "code": "mm[Hg]"}},
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 90, "system": UCUM, "code": "mm[Hg]"}}]})
    # uri: ValueSet.url
    valueset = {"resourceType": "ValueSet", "status": "draft"}
    put("vsa", {**valueset, "url": f"http://example.org/{RUN}/ValueSet/a"})
    put("vsab", {**valueset, "url": f"http://example.org/{RUN}/ValueSet/a/b"})
    put("vsc", {**valueset, "url": f"http://example.org/{RUN}/ValueSet/c"})
    return created


def found(client, query: str, ids: dict[str, str]) -> set[str]:
    """Names of the fixtures a search returns."""
    resource_type, _, params = query.partition("?")
    response = client.get(f"/fhir/{resource_type}?{params}&_tag={TAG}&_count=100")
    assert response.status_code == 200, (query, response.get_json())
    names = {value: key for key, value in ids.items()}
    return {names[e["resource"]["id"]] for e in response.get_json().get("entry", []) if e["search"]["mode"] == "match"}


NUMBER = [
    ("probability=0.5", {"p50"}),
    ("probability=0.25", {"p25"}),
    ("probability=0.3", {"p25"}),  # 0.3 means [0.25, 0.35) at its precision
    ("probability=0.35", set()),
    ("probability=gt0.25", {"p50", "p90"}),
    ("probability=ge0.25", {"p25", "p50", "p90"}),
    ("probability=lt0.5", {"p10", "p25"}),
    ("probability=le0.5", {"p10", "p25", "p50"}),
    ("probability=ne0.5", {"p10", "p25", "p90"}),
    ("probability=sa0.25", {"p50", "p90"}),
    ("probability=eb0.25", {"p10"}),
    ("probability=ap0.5", {"p50"}),
    ("probability=0.1,0.9", {"p10", "p90"}),
    ("probability=gt0.2&probability=lt0.6", {"p25", "p50"}),
    ("probability:missing=true", {"pnone"}),
    ("probability:missing=false", {"p10", "p25", "p50", "p90"}),
]

DATE = [
    ("date=2020", {"jan1", "jun15", "march"}),
    ("date=2020-03", {"march"}),
    ("date=2020-01-01", {"jan1"}),
    ("date=gt2020-06-01", {"jun15", "y2021", "open"}),
    ("date=lt2020-02-01", {"jan1", "y1990", "open"}),
    ("date=ge2020-06-15", {"jun15", "y2021", "open"}),
    ("date=le2020-01-01", {"jan1", "y1990", "open"}),
    ("date=sa2020-03-31", {"jun15", "y2021"}),
    ("date=eb2020-03-01", {"jan1", "y1990"}),
    ("date=ne2020", {"y2021", "y1990", "open"}),
    ("date=ge2020-03-01&date=le2020-03-31", {"march", "open"}),
    ("date=2020-06-15T10:00:00Z", {"jun15"}),
    ("date=2020-06-15T11:00:00%2B01:00", {"jun15"}),
    ("date=2021-05", set()),
    ("date=ge2021-05", {"y2021", "open"}),
]

STRING = [
    ("family=hard", {"hardy", "hardy2", "hardwick"}),
    ("family=HARDY", {"hardy", "hardy2"}),
    ("family:exact=Hardy", {"hardy"}),
    ("family:exact=hardy", set()),
    ("family:exact=Hårdy", {"hardy2"}),
    ("family:contains=rdy", {"hardy", "hardy2"}),
    ("family:contains=WICK", {"hardwick"}),
    ("family=o'br", {"obrien"}),
    ("name=zoe", {"hardy2"}),
    ("given=jean,alan", {"hardy", "hardwick"}),
    ("family:missing=true", {"noname"}),
    ("family=hard&given=jean", {"hardy"}),
]

TOKEN = [
    ("code=44054006", {"diabetes"}),
    (f"code={SNOMED}|44054006", {"diabetes"}),
    (f"code={ICD10}|44054006", set()),
    (f"code={SNOMED}|", {"diabetes", "hf"}),
    ("code=|LOCAL1", {"local"}),
    ("code=|E11", set()),
    ("code=44054006,E11", {"diabetes", "e11"}),
    ("code:not=44054006", {"e11", "hf", "local", "nocode"}),
    ("code:text=heart", {"hf"}),
    ("code:text=diab", {"diabetes"}),
    ("code:text=type", {"diabetes"}),
    ("code:missing=true", {"nocode"}),
    ("clinical-status:in=http://hl7.org/fhir/ValueSet/condition-clinical", {"diabetes"}),
    ("clinical-status:not-in=http://hl7.org/fhir/ValueSet/condition-clinical", {"e11", "hf", "local", "nocode"}),
]

PATIENT_TOKEN = [
    ("active=true", {"hardy"}),
    ("active=false", {"hardy2"}),
    ("active:missing=true", {"hardwick", "obrien", "noname"}),
    ("identifier=urn:hospital|MRN-1", {"hardy"}),
    ("identifier=MRN-1", {"hardy"}),
    ("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-1", {"hardy"}),
    ("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|SS|MRN-1", set()),
    ("gender=male", {"hardwick", "obrien"}),
    ("gender:not=female", {"hardwick", "obrien", "noname"}),
    ("birthdate=1934-03-14", {"hardy", "obrien"}),
]

REFERENCE = [
    ("subject={hardy}", {"subj1"}),
    ("subject=Patient/{hardy}", {"subj1"}),
    ("subject:Patient={hardy}", {"subj1"}),
    ("subject:Group={hardy}", set()),
    ("patient={obrien}", {"subj2"}),
    ("subject=Patient/{hardy},Patient/{obrien}", {"subj1", "subj2"}),
    ("subject=http://other.example.org/fhir/Patient/77", {"remote"}),
    ("subject:Group=" + RUN + "-g", {"group"}),
    ("subject:identifier=https://fhir.nhs.uk/Id/nhs-number|9991000003", {"logical"}),
    ("subject=http://localhost/fhir/Patient/{hardy}", {"subj1"}),
]

QUANTITY = [
    ("value-quantity=5.4", {"q54", "q54mg"}),
    (f"value-quantity=5.4|{UCUM}|mmol/L", {"q54"}),
    ("value-quantity=5.4||mg", {"q54mg"}),
    ("value-quantity=gt100", {"q120", "glucose"}),
    (f"value-quantity=gt100|{UCUM}|mm[Hg]", {"q120"}),
    ("value-quantity=lt5.41", {"q54", "q54mg"}),
    ("value-quantity=le5.3", set()),
    ("value-quantity=ap120", {"q120", "glucose"}),
    ("value-quantity=ne5.4", {"q120", "glucose"}),
]

COMPOSITE = [
    ("code-value-quantity=http://loinc.org|2339-0$gt100", {"glucose"}),
    ("code-value-quantity=http://loinc.org|2339-0$lt100", set()),
    ("code-value-quantity=2339-0$130", {"glucose"}),
    ("component-code-value-quantity=http://loinc.org|8480-6$gt140", {"bp"}),
    ("component-code-value-quantity=http://loinc.org|8462-4$gt140", set()),
    ("combo-code-value-quantity=http://loinc.org|8462-4$90", {"bp"}),
]

URI = [
    ("url=http://example.org/{run}/ValueSet/a", {"vsa"}),
    ("url:below=http://example.org/{run}/ValueSet", {"vsa", "vsab", "vsc"}),
    ("url:below=http://example.org/{run}/ValueSet/a", {"vsa", "vsab"}),
    ("url:above=http://example.org/{run}/ValueSet/a/b/c", {"vsa", "vsab"}),
    ("url:missing=false", {"vsa", "vsab", "vsc"}),
]


@pytest.mark.parametrize(("query", "expected"), NUMBER)
def test_number(client, ids, query, expected):
    assert found(client, f"RiskAssessment?{query}", ids) == expected


@pytest.mark.parametrize(("query", "expected"), DATE)
def test_date(client, ids, query, expected):
    names = found(client, f"Observation?{query}", ids)
    date_fixtures = {"jan1", "jun15", "march", "y2021", "y1990", "open"}
    assert names & date_fixtures == expected


def test_date_approximately(client, ids):
    names = found(client, "Observation?date=ap2020-06-15", ids)
    assert "jun15" in names and "y1990" not in names


@pytest.mark.parametrize(("query", "expected"), STRING)
def test_string(client, ids, query, expected):
    assert found(client, f"Patient?{query}", ids) == expected


@pytest.mark.parametrize(("query", "expected"), TOKEN)
def test_token(client, ids, query, expected):
    assert found(client, f"Condition?{query}", ids) == expected


@pytest.mark.parametrize(("query", "expected"), PATIENT_TOKEN)
def test_patient_tokens(client, ids, query, expected):
    assert found(client, f"Patient?{query}", ids) == expected


@pytest.mark.parametrize(("query", "expected"), REFERENCE)
def test_reference(client, ids, query, expected):
    query = query.format(hardy=f"{RUN}-hardy", obrien=f"{RUN}-obrien")
    reference_fixtures = {"subj1", "subj2", "remote", "group", "logical"}
    assert found(client, f"Observation?{query}", ids) & reference_fixtures == expected


def test_reference_missing(client, ids):
    names = found(client, "Observation?subject:missing=true", ids)
    assert {"jan1", "q54", "logical"} <= names and not names & {"subj1", "remote", "group"}


@pytest.mark.parametrize(("query", "expected"), QUANTITY)
def test_quantity(client, ids, query, expected):
    assert found(client, f"Observation?{query}", ids) == expected


@pytest.mark.parametrize(("query", "expected"), COMPOSITE)
def test_composite(client, ids, query, expected):
    assert found(client, f"Observation?{query}", ids) == expected


@pytest.mark.parametrize(("query", "expected"), URI)
def test_uri(client, ids, query, expected):
    assert found(client, f"ValueSet?{query.format(run=RUN)}", ids) == expected


def test_id_and_last_updated(client, ids):
    assert found(client, f"Patient?_id={RUN}-hardy,{RUN}-obrien", ids) == {"hardy", "obrien"}
    assert found(client, "Patient?_lastUpdated=gt2000-01-01", ids) == {"hardy", "hardy2", "hardwick", "obrien",
                                                                       "noname"}
    assert found(client, "Patient?_lastUpdated=lt2000-01-01", ids) == set()


def test_tag_profile_security_source(client, ids):
    resource = tagged({"resourceType": "Basic", "id": f"{RUN}-meta", "code": {"text": "meta"}})
    resource["meta"].update({"profile": ["http://example.org/StructureDefinition/basic-x"],
                             "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                           "code": "R"}],
                             "source": "http://example.org/source#1"})
    assert client.put(f"/fhir/Basic/{resource['id']}", data=orjson.dumps(resource),
                      content_type=FHIR_JSON).status_code in (200, 201)
    ids = {**ids, "meta": resource["id"]}
    assert found(client, "Basic?_profile=http://example.org/StructureDefinition/basic-x", ids) == {"meta"}
    assert found(client, "Basic?_security=R", ids) == {"meta"}
    assert found(client, "Basic?_source=http://example.org/source%231", ids) == {"meta"}
    assert found(client, "Basic?_security=N", ids) == set()


def ordered(client, query: str, ids: dict[str, str]) -> list[str]:
    resource_type, _, params = query.partition("?")
    body = client.get(f"/fhir/{resource_type}?{params}&_tag={TAG}&_count=100").get_json()
    names = {value: key for key, value in ids.items()}
    return [names[e["resource"]["id"]] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def test_code_and_value_together(client, ids):
    """Two criteria a composite parameter pairs are answered together (and still mean AND)."""
    assert found(client, "Observation?code=http://loinc.org|2339-0&value-quantity=gt100", ids) == {"glucose"}
    assert found(client, "Observation?code=http://loinc.org|2339-0&value-quantity=lt100", ids) == set()
    assert found(client, "Observation?code=2339-0&value-quantity=130", ids) == {"glucose"}
    assert found(client, "Observation?code=85354-9&value-quantity=gt100", ids) == set()
    assert found(client, "Observation?code=2339-0,85354-9&value-quantity=gt100", ids) == {"glucose"}


def test_sort_on_a_filtered_parameter(client, ids):
    """Sorting by the parameter the search filters on walks its index: same order as the general path."""
    date_fixtures = {"jan1", "jun15", "march", "y2021", "y1990", "open"}
    descending = [n for n in ordered(client, "Observation?date=ge2020-01-01&_sort=-date", ids) if n in date_fixtures]
    assert descending == ["open", "y2021", "jun15", "march", "jan1"]
    ascending = [n for n in ordered(client, "Observation?date=le2020-06-30&_sort=date", ids) if n in date_fixtures]
    assert ascending == ["y1990", "open", "jan1", "march", "jun15"]
    unfiltered = [n for n in ordered(client, "Observation?_sort=-date", ids) if n in date_fixtures]
    assert unfiltered == ["open", "y2021", "jun15", "march", "jan1", "y1990"]


def test_in_and_not_in_with_value_sets_the_server_holds(client, ids):
    listed = f"http://example.org/{RUN}/ValueSet/heart-and-sugar"
    whole = f"http://example.org/{RUN}/ValueSet/local-codes"
    local_system = f"http://example.org/{RUN}/CodeSystem/local"
    for resource in (
        {"resourceType": "ValueSet", "id": f"{RUN}-hs", "status": "active", "url": listed,
         "compose": {"include": [{"system": SNOMED, "concept": [{"code": "44054006"}, {"code": "84114007"}]}]}},
        {"resourceType": "CodeSystem", "id": f"{RUN}-cs", "status": "active", "url": local_system,
         "content": "complete", "concept": [{"code": "E11"}, {"code": "LOCAL1"}]},
        {"resourceType": "ValueSet", "id": f"{RUN}-lc", "status": "active", "url": whole,
         "compose": {"include": [{"system": local_system}]}},
    ):
        assert client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", data=orjson.dumps(resource),
                          content_type=FHIR_JSON).status_code in (200, 201)
    assert found(client, f"Condition?code:in={listed}", ids) == {"diabetes", "hf"}
    assert found(client, f"Condition?code:not-in={listed}", ids) == {"e11", "local", "nocode"}
    # E11 is coded in ICD-10, not in the local system; a code with no system (a `code` element, or a
    # Coding without one, like LOCAL1's) is matched on the code alone
    assert found(client, f"Condition?code:in={whole}", ids) == {"local"}
    unknown = client.get(f"/fhir/Condition?code:in=http://example.org/{RUN}/nope")
    assert unknown.status_code == 400
