"""FHIR JSON, exactly: what a strict parser refuses is refused with a 400 naming the element, and writes nothing."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from flask import Flask
from sqlalchemy import func, select

from loaders.sinks import InProcessSink, SinkError
from server.fhir import jsontext
from server.fhir.jsontext import MAX_JSON_DEPTH
from server.fhir.strict import MAX_STRING_CHARS
from server.store.schema import resource_versions, resources
from tests.support import FHIR_JSON, app_on_own_database, assert_outcome, patient, unique

NHS = "https://fhir.nhs.uk/Id/nhs-number"
MARK = "https://sharedcare.example.org/Id/strict-json-test"


def record_rows(app) -> tuple[int, int]:
    """Resources and versions in the store."""
    with app.extensions["sharedcare"].services.engine.connect() as connection:
        return (connection.execute(select(func.count()).select_from(resources)).scalar_one(),
                connection.execute(select(func.count()).select_from(resource_versions)).scalar_one())


@contextmanager
def nothing_written(app, client, *marks: str) -> Iterator[None]:
    """The block writes no resource or version, and no resource carrying one of `marks` can be found."""
    before = record_rows(app)
    yield
    assert record_rows(app) == before
    for mark in marks:
        for resource_type in ("Patient", "Observation", "Bundle"):
            found = client.get(f"/fhir/{resource_type}?identifier={MARK}|{mark}&_summary=count").get_json()
            assert found["total"] == 0, (resource_type, mark)


def marked(resource: dict[str, Any], mark: str) -> dict[str, Any]:
    """The resource with an identifier the test searches for afterwards."""
    return {**resource, "identifier": [*resource.get("identifier", []), {"system": MARK, "value": mark}]}


def observation(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, **extra}


def extension(value_key: str, value: Any) -> dict[str, Any]:
    return {"extension": [{"url": "https://sharedcare.example.org/StructureDefinition/test", value_key: value}]}


def post(client, resource: dict[str, Any] | bytes, path: str | None = None):
    data = resource if isinstance(resource, bytes) else orjson.dumps(resource)
    where = path or f"/fhir/{orjson.loads(data)['resourceType']}"
    return client.post(where, data=data, content_type=FHIR_JSON)


# (what, resource, issue code, FHIRPath expression): one row per primitive kind and way of being wrong
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("boolean as a string", patient(active="yes"), "structure", "Patient.active"),
    ("boolean as a number", patient(active=1), "structure", "Patient.active"),
    ("integer as a string", patient(multipleBirthInteger="2"), "structure", "Patient.multipleBirthInteger"),
    ("integer with a fraction", patient(multipleBirthInteger=2.0), "structure", "Patient.multipleBirthInteger"),
    ("integer as a boolean", patient(multipleBirthInteger=True), "structure", "Patient.multipleBirthInteger"),
    ("integer past 32 bits", patient(multipleBirthInteger=2**31), "value", "Patient.multipleBirthInteger"),
    ("positiveInt zero", patient(**extension("valuePositiveInt", 0)), "value",
     "Patient.extension[0].valuePositiveInt"),
    ("positiveInt as a string", patient(**extension("valuePositiveInt", "3")), "structure",
     "Patient.extension[0].valuePositiveInt"),
    ("unsignedInt negative", patient(photo=[{"contentType": "image/png", "size": -1}]), "value",
     "Patient.photo[0].size"),
    ("unsignedInt as a string", patient(photo=[{"contentType": "image/png", "size": "12"}]), "structure",
     "Patient.photo[0].size"),
    ("decimal as a string", observation(valueQuantity={"value": "12.5"}), "structure",
     "Observation.valueQuantity.value"),
    ("decimal as a boolean", observation(valueQuantity={"value": True}), "structure",
     "Observation.valueQuantity.value"),
    ("string as a number", patient(name=[{"family": 12}]), "structure", "Patient.name[0].family"),
    ("string as an object", patient(name=[{"family": {"text": "x"}}]), "structure", "Patient.name[0].family"),
    ("code as a number", patient(gender=5), "structure", "Patient.gender"),
    ("code with a leading space", patient(gender=" female"), "value", "Patient.gender"),
    ("code with two spaces inside", observation(code={"coding": [{"system": "http://loinc.org",
                                                                  "code": "29463  7"}]}),
     "value", "Observation.code.coding[0].code"),
    ("id with a space", patient(contained=[{"resourceType": "Organization", "id": "a b", "name": "x"}]), "value",
     "Patient.contained[0].id"),
    ("id of 65 characters", patient(**extension("valueId", "a" * 65)), "value", "Patient.extension[0].valueId"),
    ("date as a number", patient(birthDate=19340314), "structure", "Patient.birthDate"),
    ("date with month 13", patient(birthDate="1934-13-14"), "value", "Patient.birthDate"),
    ("date without leading zeros", patient(birthDate="1934-3-14"), "value", "Patient.birthDate"),
    ("dateTime with a time but no zone", patient(deceasedDateTime="2020-01-01T10:00:00"), "value",
     "Patient.deceasedDateTime"),
    ("instant without seconds", patient(**extension("valueInstant", "2020-01-01T10:00Z")), "value",
     "Patient.extension[0].valueInstant"),
    ("time of hour 25", patient(**extension("valueTime", "25:00:00")), "value", "Patient.extension[0].valueTime"),
    ("uri with a space", patient(identifier=[{"system": "https://example.org/a b", "value": "1"}]), "value",
     "Patient.identifier[0].system"),
    ("uri as a number", patient(implicitRules=5), "structure", "Patient.implicitRules"),
    ("oid not in oid form", patient(**extension("valueOid", "urn:oid:1.2.x")), "value",
     "Patient.extension[0].valueOid"),
    ("uuid in capitals", patient(**extension("valueUuid", "urn:uuid:A1B2C3D4-0000-4000-8000-000000000001")),
     "value", "Patient.extension[0].valueUuid"),
    ("base64Binary with foreign characters", patient(photo=[{"contentType": "image/png", "data": "!!!!"}]),
     "value", "Patient.photo[0].data"),
    ("base64Binary not in groups of four", patient(photo=[{"contentType": "image/png", "data": "abc"}]),
     "value", "Patient.photo[0].data"),
    ("base64Binary as a number", patient(photo=[{"contentType": "image/png", "data": 1234}]), "structure",
     "Patient.photo[0].data"),
    ("markdown as a number", patient(**extension("valueMarkdown", 7)), "structure",
     "Patient.extension[0].valueMarkdown"),
    ("empty string", patient(name=[{"family": ""}]), "structure", "Patient.name[0].family"),
    ("whitespace-only code", patient(gender="   "), "value", "Patient.gender"),
    ("control character", patient(name=[{"family": "Har\u0007dy"}]), "value", "Patient.name[0].family"),
    ("empty object", patient(name=[{}]), "structure", "Patient.name[0]"),
    ("empty array", patient(telecom=[]), "structure", "Patient.telecom"),
    ("null value", patient(active=None), "structure", "Patient.active"),
    ("null in a repeating complex element", patient(telecom=[None]), "structure", "Patient.telecom[0]"),
    ("array for a single element", patient(maritalStatus=[{"text": "married"}]), "structure",
     "Patient.maritalStatus"),
    ("object for a repeating element", patient(telecom={"system": "phone", "value": "1"}), "structure",
     "Patient.telecom"),
    ("array for a single primitive", patient(active=[True]), "structure", "Patient.active"),
    ("unknown element", patient(colour="blue"), "structure", "Patient.colour"),
    ("legacy fhir_comments", patient(fhir_comments=["a note"]), "structure", "Patient.fhir_comments"),
    ("contained resource of no type", patient(contained=[{"id": "x"}]), "structure", "Patient.contained[0]"),
]


@pytest.mark.parametrize(("what", "resource", "code", "expression"), REFUSED, ids=[row[0] for row in REFUSED])
def test_each_primitive_kind_has_its_json_type_and_form(app, client, what, resource, code, expression):
    mark = unique("strict")
    with nothing_written(app, client, mark):
        assert_outcome(post(client, marked(resource, mark)), 400, code, expression)


@pytest.mark.parametrize("path", ["PUT", "PATCH"])
def test_update_and_patch_results_are_held_to_the_same_rules(app, client, path):
    mark = unique("strict")
    created = post(client, marked(patient(active=True), mark)).get_json()
    url = f"/fhir/Patient/{created['id']}"
    before = record_rows(app)
    if path == "PUT":
        response = client.put(url, data=orjson.dumps({**created, "active": "false"}), content_type=FHIR_JSON)
    else:
        patch = [{"op": "replace", "path": "/active", "value": "false"}]
        response = client.patch(url, data=orjson.dumps(patch), content_type="application/json-patch+json")
    assert_outcome(response, 400, "structure", "Patient.active")
    assert record_rows(app) == before
    assert client.get(url).get_json()["active"] is True


def test_strings_hold_at_most_one_megabyte(app, client):
    """1 MB as R4 counts it: 1024 * 1024 characters (a multi-byte character counts once)."""
    mark = unique("strict")
    at_limit = "é" * MAX_STRING_CHARS
    stored = post(client, marked(patient(name=[{"family": at_limit}]), mark))
    assert stored.status_code == 201, stored.get_json()
    assert client.get(f"/fhir/Patient/{stored.get_json()['id']}").get_json()["name"][0]["family"] == at_limit
    over = unique("strict")
    with nothing_written(app, client, over):
        body = assert_outcome(post(client, marked(patient(name=[{"family": at_limit + "é"}]), over)), 400,
                              "too-long", "Patient.name[0].family")
    assert str(MAX_STRING_CHARS) in body["issue"][0]["diagnostics"]


ALIGNMENT: list[tuple[str, dict[str, Any], str]] = [
    ("fewer extensions than values", {"given": ["Jean", "Ann"], "_given": [None]}, "Patient.name[0].given"),
    ("more extensions than values", {"given": ["Jean"], "_given": [None, {"id": "x"}]}, "Patient.name[0].given"),
    ("null value with nothing beside it", {"given": ["Jean", None]}, "Patient.name[0].given[1]"),
    ("nulls on both sides", {"given": ["Jean", None], "_given": [None, None]}, "Patient.name[0].given[1]"),
    ("an object for a repeating element's extensions", {"given": ["Jean"], "_given": {"id": "x"}},
     "Patient.name[0].given"),
    ("a string among the extensions", {"given": ["Jean"], "_given": ["x"]}, "Patient.name[0].given[0]"),
    ("an empty extension object", {"given": ["Jean"], "_given": [{}]}, "Patient.name[0].given[0]"),
    ("an unknown element in the extension object", {"given": ["Jean"], "_given": [{"colour": "red"}]},
     "Patient.name[0].given[0].colour"),
]


@pytest.mark.parametrize(("what", "name", "expression"), ALIGNMENT, ids=[row[0] for row in ALIGNMENT])
def test_primitive_extensions_line_up_with_their_values(app, client, what, name, expression):
    mark = unique("strict")
    with nothing_written(app, client, mark):
        assert_outcome(post(client, marked(patient(name=[{"family": "Hardy", **name}]), mark)), 400, "structure",
                       expression)


def test_lined_up_primitive_extensions_are_stored_as_sent(client):
    reason = extension("valueString", "known only by this name")
    name = {"family": "Hardy", "given": ["Jean", None, "Ann"], "_given": [None, reason, {"id": "g3"}]}
    resource = patient(name=[name], _birthDate=reason, _active=reason)  # an extension without its value
    response = post(client, resource)
    assert response.status_code == 201, response.get_json()
    back = client.get(f"/fhir/Patient/{response.get_json()['id']}").get_json()
    assert back["name"] == [name]
    assert back["_birthDate"] == reason and back["_active"] == reason and "active" not in back


def test_active_yes_is_not_found_by_a_search_for_active_true(app, client):
    """The issue's first finding: `"active": "yes"` used to be stored and then missed by `active=true`."""
    mark = unique("strict")
    with nothing_written(app, client, mark):
        assert_outcome(post(client, marked(patient(active="yes"), mark)), 400, "structure", "Patient.active")
    stored = post(client, marked(patient(active=True), mark))
    assert stored.status_code == 201
    found = client.get(f"/fhir/Patient?identifier={MARK}|{mark}&active=true").get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [stored.get_json()["id"]]


# ---------------------------------------------------------------------------------------- decimals as written

EXACT = ["1.50", "1.0e2", "1.0E+2", "2.50e-3", "0.000001", "100", "-0.10", "12345678901234567890.123",
         "123456789012345678901234567890", "3.141592653589793238462643383279"]


def stored_value(client, path: str) -> bytes:
    return client.get(path).data


@pytest.mark.parametrize("number", EXACT)
def test_decimals_are_stored_and_served_as_written(client, number):
    text = ('{"resourceType":"Observation","status":"final","code":{"text":"weight"},'
            f'"valueQuantity":{{"value":{number},"unit":"kg"}}}}').encode()
    response = post(client, text)
    assert response.status_code == 201, response.get_json()
    assert f'"value":{number},'.encode() in response.data
    resource_id = response.get_json()["id"]
    url = f"/fhir/Observation/{resource_id}"
    assert f'"value":{number},'.encode() in stored_value(client, url)
    assert f'"value": {number},'.encode() in stored_value(client, url + "?_pretty=true")
    assert f'"value":{number},'.encode() in stored_value(client, url + "?_elements=valueQuantity")
    searched = stored_value(client, f"/fhir/Observation?_id={resource_id}")
    assert f'"value":{number},'.encode() in searched
    patch = [{"op": "add", "path": "/valueQuantity/system", "value": "http://unitsofmeasure.org"}]
    patched = client.patch(url, data=orjson.dumps(patch), content_type="application/json-patch+json")
    assert patched.status_code == 200, patched.get_json()
    assert f'"value":{number},'.encode() in stored_value(client, url)
    assert f'"value":{number},'.encode() in stored_value(client, url + "/_history/1")


def test_decimals_in_a_transaction_and_a_json_patch_value_keep_their_text(client):
    bundle = (b'{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation",'
              b'"status":"final","code":{"text":"weight"},"valueQuantity":{"value":70.50}},'
              b'"request":{"method":"POST","url":"Observation"}}]}')
    response = client.post("/fhir", data=bundle, content_type=FHIR_JSON)
    assert response.status_code == 200, response.get_json()
    location = response.get_json()["entry"][0]["response"]["location"].rsplit("/_history", 1)[0]
    assert b'"value":70.50' in stored_value(client, f"/fhir/{location}")
    patch = b'[{"op":"replace","path":"/valueQuantity/value","value":71.250}]'
    patched = client.patch(f"/fhir/{location}", data=patch, content_type="application/json-patch+json")
    assert patched.status_code == 200, patched.get_json()
    assert b'"value":71.250' in stored_value(client, f"/fhir/{location}")
    found = client.get(f"/fhir/Observation?_id={location.split('/')[1]}&value-quantity=71.25").get_json()
    assert found["total"] == 1


# ------------------------------------------------------------------------------------------- Bundles

def transaction(entries: list[dict[str, Any]], kind: str = "transaction", **envelope: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, **envelope, "entry": entries}


def create_entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


ENVELOPES: list[tuple[str, dict[str, Any], str, str]] = [
    ("identifier as an array", {"identifier": [{"system": MARK, "value": "x"}]}, "structure", "Bundle.identifier"),
    ("unknown element", {"colour": "blue"}, "structure", "Bundle.colour"),
    ("timestamp not an instant", {"timestamp": "yesterday"}, "value", "Bundle.timestamp"),
    ("total as a string", {"total": "1"}, "structure", "Bundle.total"),
]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
@pytest.mark.parametrize(("what", "envelope", "code", "expression"), ENVELOPES, ids=[row[0] for row in ENVELOPES])
def test_the_envelope_posted_to_the_base_is_validated_like_any_resource(app, client, kind, what, envelope, code,
                                                                         expression):
    mark = unique("strict")
    bundle = transaction([create_entry(marked(patient(), mark))], kind, **envelope)
    with nothing_written(app, client, mark):
        assert_outcome(client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON), 400, code,
                       expression)
        assert_outcome(post(client, bundle, "/fhir/Bundle"), 400, code, expression)


def test_an_entry_request_is_validated_with_the_envelope(app, client):
    mark = unique("strict")
    bundle = transaction([{**create_entry(marked(patient(), mark)),
                           "request": {"method": "POST", "url": "Patient", "ifNoneExist": ""}}])
    with nothing_written(app, client, mark):
        assert_outcome(client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON), 400, "structure",
                       "Bundle.entry[0].request.ifNoneExist")


def test_an_entry_resource_is_validated_once_when_written_and_named_by_its_entry(app, client):
    mark = unique("strict")
    bundle = transaction([create_entry(marked(patient(), mark)), create_entry(marked(patient(active="no"), mark))])
    with nothing_written(app, client, mark):
        body = assert_outcome(client.post("/fhir", data=orjson.dumps(bundle), content_type=FHIR_JSON), 400,
                              "structure", "Patient.active")
    assert ["Bundle.entry[1]", "Patient.active"] in [issue["expression"] for issue in body["issue"]]
    assert len(body["issue"]) == 1


def test_a_nested_bundle_is_stored_as_a_resource_never_run(app, client):
    mark, inner_mark = unique("strict"), unique("strict")
    nested = marked(transaction([create_entry(marked(patient(), inner_mark))]), mark)
    nested["identifier"] = nested["identifier"][0]  # Bundle.identifier is a single Identifier
    response = client.post("/fhir", data=orjson.dumps(transaction([create_entry(nested)])), content_type=FHIR_JSON)
    assert response.status_code == 200, response.get_json()
    location = response.get_json()["entry"][0]["response"]["location"].rsplit("/_history", 1)[0]
    assert location.startswith("Bundle/")
    assert client.get(f"/fhir/{location}").get_json()["entry"][0]["resource"]["identifier"][-1]["value"] == inner_mark
    found = client.get(f"/fhir/Patient?identifier={MARK}|{inner_mark}&_summary=count").get_json()
    assert found["total"] == 0  # its entry was stored inside it, not run


def test_a_nested_bundle_is_validated_as_a_resource(app, client):
    mark, inner_mark = unique("strict"), unique("strict")
    nested = transaction([create_entry(marked(patient(active="yes"), inner_mark))])
    nested["identifier"] = {"system": MARK, "value": mark}
    with nothing_written(app, client, mark, inner_mark):
        response = client.post("/fhir", data=orjson.dumps(transaction([create_entry(nested)])),
                               content_type=FHIR_JSON)
        body = assert_outcome(response, 400, "structure", "Bundle.entry[0].resource.active")
    assert body["issue"][0]["expression"][0] == "Bundle.entry[0]"


@pytest.mark.parametrize("url", ["", "/", "?"])
def test_a_nested_bundle_posted_to_the_base_is_refused(app, client, url):
    inner_mark = unique("strict")
    nested = transaction([create_entry(marked(patient(), inner_mark))])
    entry = {"resource": nested, "request": {"method": "POST", "url": url}}
    with nothing_written(app, client, inner_mark):
        body = assert_outcome(client.post("/fhir", data=orjson.dumps(transaction([entry])), content_type=FHIR_JSON),
                              400)
    assert body["issue"][0]["expression"][0].startswith("Bundle.entry[0]")


# ------------------------------------------------------------------------------------------ nesting depth

DEEP = "deep-extension-goes-here"


def deep_extension(levels: int) -> str:
    """The JSON text of an extension holding an extension ... `levels` deep (two JSON levels each); as text,
    since orjson itself serialises no more than 255 levels."""
    head = '{"url":"https://example.org/deep","extension":['
    return head * levels + '{"url":"https://example.org/deep","valueString":"bottom"}' + "]}" * levels


def with_deep(value: Any, levels: int) -> bytes:
    """`value` as JSON text with the string DEEP replaced by an extension `levels` deep."""
    return orjson.dumps(value).replace(f'"{DEEP}"'.encode(), deep_extension(levels).encode())


def deep_bodies(client, mark: str) -> dict[str, Callable[[], Any]]:
    """One request per kind of JSON body the server parses, each nested 300 extensions (600 levels) deep."""
    existing = post(client, patient()).get_json()["id"]
    deep = marked(patient(extension=[DEEP]), mark)
    fhirpath_patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
        {"name": "name", "valueString": "extension"}, {"name": "value", "valueExtension": DEEP}]}]}
    json_patch = [{"op": "add", "path": "/extension", "value": [DEEP]}]
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": deep}]}
    return {
        "resource": lambda: post(client, with_deep(deep, 300), "/fhir/Patient"),
        "update": lambda: client.put(f"/fhir/Patient/{existing}", data=with_deep({**deep, "id": existing}, 300),
                                     content_type=FHIR_JSON),
        "transaction": lambda: post(client, with_deep(transaction([create_entry(deep)]), 300), "/fhir"),
        "batch": lambda: post(client, with_deep(transaction([create_entry(deep)], "batch"), 300), "/fhir"),
        "Parameters": lambda: post(client, with_deep(parameters, 300), "/fhir/Patient/$validate"),
        "FHIRPath Patch": lambda: client.patch(f"/fhir/Patient/{existing}", data=with_deep(fhirpath_patch, 300),
                                               content_type=FHIR_JSON),
        "JSON Patch": lambda: client.patch(f"/fhir/Patient/{existing}", data=with_deep(json_patch, 300),
                                           content_type="application/json-patch+json"),
        "beyond the JSON parser's own limit": lambda: post(client, with_deep(deep, 600), "/fhir/Patient"),
    }


def test_every_json_body_nested_too_deep_is_a_400_naming_the_limit(app, client):
    mark = unique("strict")
    for what, send in deep_bodies(client, mark).items():
        with nothing_written(app, client, mark):
            body = assert_outcome(send(), 400, "too-costly")
        assert str(MAX_JSON_DEPTH) in body["issue"][0]["diagnostics"], what


def test_a_deep_patch_entry_in_a_bundle_is_refused(app, client):
    existing = post(client, patient()).get_json()["id"]
    patch = with_deep([{"op": "add", "path": "/extension", "value": [DEEP]}], 300)
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
              "data": base64.b64encode(patch).decode()}
    entry = {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{existing}"}}
    before = record_rows(app)
    assert_outcome(post(client, transaction([entry]), "/fhir"), 400, "too-costly", "Bundle.entry[0]")
    assert record_rows(app) == before


def test_nesting_within_the_limit_is_stored(client):
    response = post(client, with_deep(patient(extension=[DEEP]), 40))  # 84 levels
    assert response.status_code == 201, response.get_json()


def test_resources_written_in_process_are_held_to_the_rules_too(app, client):
    """The loaders' in-process sink (and so every in-process writer) goes through the same checks."""
    sink = InProcessSink.from_app(app, "strict-json-test")
    mark = unique("strict")
    deep = orjson.loads(with_deep(marked(patient(extension=[DEEP]), mark), 60))  # 124 levels
    for resource, code in [(marked(patient(active="yes"), mark), "structure"), (deep, "too-costly")]:
        with nothing_written(app, client, mark), pytest.raises(SinkError) as refused:
            sink.post(transaction([create_entry(resource)]))
        assert refused.value.status == 400
        assert code in [issue["code"] for issue in refused.value.outcome["issue"]]


# ----------------------------------------------------------------------------------- the HL7 examples

def exact_form(value: Any) -> Any:
    """A parsed resource with every number as its JSON text, so that `1.50` and `1.5` differ."""
    if isinstance(value, dict):
        return {key: exact_form(item) for key, item in value.items() if key != "meta"}
    if isinstance(value, list):
        return [exact_form(item) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("number", jsontext.dumps(value).decode())
    return value


@pytest.fixture(scope="module")
def unchecked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A server that does not check references: the HL7 examples name resources outside their set."""
    yield from app_on_own_database(tmp_path_factory, referential_integrity="off")


def test_hl7_examples_keep_their_decimals_as_written(unchecked, shared_dir):
    """Every HL7 example with a number a float would change (`125.00`, `1.0e2`) is stored and served with
    the same text, sent as the file is."""
    client = unchecked.test_client()
    exact = []
    for path in sorted((shared_dir / "fhir-r4" / "examples").glob("*.json")):
        raw = path.read_bytes()
        if "ExactNumber" in type_names(jsontext.loads(raw)):
            exact.append((path.name, raw))
    assert len(exact) == 37
    for name, raw in exact:
        resource = jsontext.loads(raw)
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = client.put(url, data=raw, content_type=FHIR_JSON)
        assert response.status_code in (200, 201), (name, response.get_json())
        assert exact_form(jsontext.loads(client.get(url).data)) == exact_form(resource), name


def type_names(value: Any) -> set[str]:
    """The Python types of a parsed JSON value's leaves."""
    if isinstance(value, dict):
        return set().union(*(type_names(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(type_names(item) for item in value))
    return {type(value).__name__}


def test_the_model_sees_each_distinct_entry_once_and_names_the_entry_itself(app, client):
    """Entries alike but for their fullUrl are modelled once; an issue of a later distinct entry still
    names that entry's own index."""
    mark = unique("strict")
    entries = [{**create_entry(marked(patient(), mark)), "fullUrl": f"urn:uuid:0b0e7f2e-0000-4000-8000-00000000000{i}"}
               for i in range(3)]
    entries.append({**create_entry(marked(patient(), mark)), "response": {"location": "Patient/x"}})
    with nothing_written(app, client, mark):
        assert_outcome(post(client, transaction(entries), "/fhir"), 400, "structure",
                       "Bundle.entry[3].response.status")


def test_an_update_writing_a_decimal_otherwise_is_a_new_version_and_the_same_text_is_none(client):
    first = post(client, observation(valueQuantity={"value": 1.5})).get_json()
    url = f"/fhir/Observation/{first['id']}"
    again = orjson.dumps({**first, "valueQuantity": {"value": 0}}).replace(b'"value":0', b'"value":1.50')
    changed = client.put(url, data=again, content_type=FHIR_JSON)
    assert changed.status_code == 200 and changed.headers["ETag"] == 'W/"2"', changed.get_json()
    assert b'"value":1.50' in stored_value(client, url)
    unchanged = client.put(url, data=again, content_type=FHIR_JSON)
    assert unchanged.headers["ETag"] == 'W/"2"'
