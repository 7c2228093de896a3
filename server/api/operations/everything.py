"""Patient/{id}/$everything: the patient, their compartment and the resources it refers to, paged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...fhir.outcome import bad_request
from ...store.search.parse import DEFAULT_COUNT, MAX_COUNT, SearchQuery
from ..handlers import bounded_int, instant_param, search_bundle
from ..router import Interaction, Operation

if TYPE_CHECKING:
    from ..app import FhirApi
    from ..model import FhirResponse


def everything(ix: Interaction) -> FhirResponse:
    request = ix.request
    patient = ix.repo.read("Patient", ix.id)
    since = instant_param(request.param("_since"), "_since")
    types: list[str] = []
    for value in [v for k, v in request.params if k == "_type"]:
        for name in value.split(","):
            name = name.strip()
            if name and name not in ix.services.types.supported:
                raise bad_request(f"Unknown resource type '{name}' in _type", "_type")
            if name:
                types.append(name)
    count = bounded_int(request.param("_count"), "_count", DEFAULT_COUNT, MAX_COUNT)
    offset = bounded_int(request.param("_offset"), "_offset", 0, 10**7)
    result = ix.services.search.everything(ix.repo, patient.id, since=since, types=types, count=count, offset=offset)
    applied = [(k, v) for k, v in request.params if k in ("_since", "_type")]
    result.query = SearchQuery(("Patient",), count=count, offset=offset, applied=applied)
    return search_bundle(ix, result, f"{request.base_url}/Patient/{patient.id}/$everything")


def register(api: FhirApi) -> None:
    api.add_operation(Operation(
        name="everything", handler=everything, levels=("instance",), types=("Patient",),
        definition="http://hl7.org/fhir/OperationDefinition/Patient-everything",
    ))
