"""Terminology operations over the bundled content: $expand, $lookup, $validate-code and $translate."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ...fhir.dates import format_instant, now_us
from ...fhir.outcome import FhirError, Issue, bad_request, not_found
from ...fhir.profiles import NotEnumerable, Terminology
from ..model import FhirResponse
from ..router import Interaction, Operation

if TYPE_CHECKING:
    from ..app import FhirApi
from .params import OperationParams, parameters, part

Json = dict[str, Any]
SPEC = "http://hl7.org/fhir/OperationDefinition/"
MAX_EXPANSION = 1000


def register(api: FhirApi) -> None:
    for operation in operations():
        api.add_operation(operation)


def operations() -> list[Operation]:
    return [
        Operation("expand", expand, ("type", "instance"), ("ValueSet",), definition=SPEC + "ValueSet-expand"),
        Operation("lookup", lookup, ("type",), ("CodeSystem",), definition=SPEC + "CodeSystem-lookup"),
        Operation("validate-code", validate_code, ("type", "instance"), ("ValueSet",),
                  definition=SPEC + "ValueSet-validate-code"),
        Operation("translate", translate, ("type", "instance"), ("ConceptMap",),
                  definition=SPEC + "ConceptMap-translate"),
    ]


def terminology_of(ix: Interaction) -> Terminology:
    return ix.services.profiles.terminology


def value_set_url(ix: Interaction, params: OperationParams) -> str:
    """The value set's canonical: from the instance in the URL, or the `url` parameter."""
    instance_id = ix.vars.get("id")
    if instance_id is not None:
        stored = ix.repo.read("ValueSet", instance_id).json()
        url = stored.get("url")
        if not url:
            raise bad_request(f"ValueSet/{instance_id} has no url")
        return str(url)
    return params.require("url")


def known_value_set(terminology: Terminology, url: str) -> None:
    if terminology.value_set(url) is None:
        raise not_found(f"The value set {url} is not known to this server")


# ------------------------------------------------------------------------- $expand

def expand(ix: Interaction) -> FhirResponse:
    params = OperationParams(ix.request)
    terminology = terminology_of(ix)
    url = value_set_url(ix, params)
    known_value_set(terminology, url)
    text_filter = params.text("filter")
    offset = params.integer("offset", 0, 10**9)
    count = params.integer("count", MAX_EXPANSION, MAX_EXPANSION)
    try:
        concepts = terminology.expand(url, text_filter)
    except NotEnumerable as exc:
        raise FhirError(422, [Issue("too-costly", str(exc))]) from exc
    source = terminology.value_set_resources.get(url.split("|", 1)[0], {"url": url})
    expansion: Json = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": format_instant(now_us()),
        "total": len(concepts),
        "offset": offset,
        "parameter": [p for p in (
            {"name": "filter", "valueString": text_filter} if text_filter else None,
            {"name": "count", "valueInteger": count} if params.get("count") is not None else None,
            {"name": "offset", "valueInteger": offset} if params.get("offset") is not None else None,
        ) if p is not None],
        "contains": [
            {"system": c.system, "code": c.code, **({"display": c.display} if c.display else {})}
            for c in concepts[offset:offset + count]
        ],
    }
    for key in ("parameter", "contains"):
        if not expansion[key]:
            del expansion[key]
    body = {"resourceType": "ValueSet", **{k: source[k] for k in ("id", "url", "version", "name", "title", "status")
                                           if k in source}, "expansion": expansion}
    body.setdefault("status", "active")
    return FhirResponse(200, body)


# ------------------------------------------------------------------------- $lookup

def lookup(ix: Interaction) -> FhirResponse:
    params = OperationParams(ix.request)
    system, code = system_and_code(params)
    if not system:
        raise bad_request("$lookup needs the 'system' parameter (or a 'coding')", "system", code="required")
    terminology = terminology_of(ix)
    info = terminology.code_systems.get(system)
    if info is None:
        raise not_found(f"The code system {system} is not bundled here (its codes are checked for form only)"
                        if system in ("http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10")
                        else f"The code system {system} is not known to this server")
    concept = info.concepts.get(code)
    if concept is None:
        raise not_found(f"The code '{code}' is not in the code system {system}")
    designations = [
        {"name": "designation", "part": [p for p in (
            part("language", "Code", d.get("language")), part("use", "Coding", d.get("use")),
            part("value", "String", d.get("value"))) if len(p) > 1]}
        for d in concept.designations
    ]
    body = parameters(
        part("name", "String", info.name), part("version", "String", info.version),
        part("display", "String", concept.display),
        {"name": "property", "part": [part("code", "Code", "definition"),
                                      part("value", "String", concept.definition)]}
        if concept.definition else {"name": "property"},
        *designations,
    )
    return FhirResponse(200, body)


def system_and_code(params: OperationParams) -> tuple[str | None, str]:
    coding = params.coding("coding")
    if coding is not None:
        system, code = coding.get("system"), coding.get("code")
    else:
        system, code = params.text("system"), params.text("code")
    if not code:
        raise bad_request("The operation needs the parameter 'code' (or a 'coding')", "code", code="required")
    return system, code


# ------------------------------------------------------------------------- $validate-code

def validate_code(ix: Interaction) -> FhirResponse:
    params = OperationParams(ix.request)
    terminology = terminology_of(ix)
    url = value_set_url(ix, params)
    known_value_set(terminology, url)
    concept_param = params.coding("codeableConcept")
    if concept_param is not None:
        codings = [c for c in concept_param.get("coding", []) if isinstance(c, dict)]
        if not codings:
            raise bad_request("The codeableConcept has no coding", "codeableConcept", code="required")
        results = [terminology.validate_code(url, c.get("system"), str(c.get("code", "")), c.get("display"))
                   for c in codings]
        good = next((r for r in results if r[0]), None)
        result, message, concept = good if good is not None else results[0]
    else:
        system, code = system_and_code(params)
        display = params.text("display")
        if display is None and params.coding("coding") is not None:
            display = params.coding("coding").get("display")  # type: ignore[union-attr]
        result, message, concept = terminology.validate_code(url, system, code, display)
    body = parameters(part("result", "Boolean", result), part("message", "String", message),
                      part("display", "String", concept.display if concept is not None else None))
    return FhirResponse(200, body)


# ------------------------------------------------------------------------- $translate

def translate(ix: Interaction) -> FhirResponse:
    params = OperationParams(ix.request)
    terminology = terminology_of(ix)
    url = params.text("url")
    instance_id = ix.vars.get("id")
    if instance_id is not None:
        url = str(ix.repo.read("ConceptMap", instance_id).json().get("url", ""))
    source, target = params.text("source"), params.text("target")
    system, code = system_and_code(params)
    if not system:
        raise bad_request("$translate needs the 'system' parameter (or a 'coding')", "system", code="required")
    if not (url or source or target):
        raise bad_request("$translate needs a concept map: 'url', 'source' or 'target'", "url", code="required")
    maps = terminology.find_maps(url, source, target)
    if not maps:
        raise not_found(f"No concept map is known for {url or ' to '.join(filter(None, (source, target)))}")
    found = terminology.translate(maps, system, code, params.text("targetsystem"))
    matched = [t for t in found if t.equivalence not in ("disjoint", "unmatched")]
    message = "" if matched else f"No translation of {system}|{code} in {', '.join(m['url'] for m in maps)}"
    matches = [
        {"name": "match", "part": [
            part("equivalence", "Code", t.equivalence),
            part("concept", "Coding", {"system": t.system, "code": t.code,
                                       **({"display": t.display} if t.display else {})}),
            part("source", "Uri", t.source),
        ]}
        for t in found
    ]
    return FhirResponse(200, parameters(part("result", "Boolean", bool(matched)), part("message", "String", message),
                                        *matches))
