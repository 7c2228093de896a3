"""`$validate` at type and instance level: structure, required bindings and profiles, as an OperationOutcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...fhir.outcome import FhirError, Issue, bad_request, operation_outcome
from ...fhir.validate import unnamed
from ..model import FhirResponse
from ..router import Interaction, Operation

if TYPE_CHECKING:
    from ..app import FhirApi
from .params import OperationParams

MODES = ("create", "update", "delete")
DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


def register(api: FhirApi) -> None:
    for operation in operations():
        api.add_operation(operation)


def operations() -> list[Operation]:
    return [Operation("validate", validate, ("type", "instance"), definition=DEFINITION)]


def validate(ix: Interaction) -> FhirResponse:
    """Answer 200 with one issue per problem (an informational issue when there is none)."""
    params = OperationParams(ix.request, body_resource_name="resource")
    mode = params.text("mode")
    if mode is not None and mode not in MODES:
        raise bad_request(f"mode must be one of {', '.join(MODES)}, not {mode!r}", "mode", code="value")
    profile = params.text("profile")
    instance_id = ix.vars.get("id")
    if mode == "delete":
        return FhirResponse(200, operation_outcome(check_delete(ix, instance_id)))
    resource = params.resource("resource")
    if resource is None:
        if instance_id is None or ix.request.method != "GET":
            raise bad_request("$validate needs the resource to validate (the body, or the 'resource' parameter)",
                              "resource", code="required")
        resource = ix.repo.read(ix.type, instance_id).json()
    issues = check_resource(ix, resource, mode, instance_id, profile)
    return FhirResponse(200, operation_outcome(issues))


def check_delete(ix: Interaction, instance_id: str | None) -> list[Issue]:
    """A delete is valid when the instance exists (deleting is otherwise unconstrained here)."""
    if instance_id is None:
        raise bad_request("$validate with mode=delete is an instance-level operation: /Type/id/$validate",
                          code="required")
    found = ix.repo.fetch_current(ix.type, instance_id)
    if found is None or found.deleted:
        return [Issue("not-found", f"{ix.type}/{instance_id} does not exist, so it cannot be deleted",
                      (f"{ix.type}",))]
    return [Issue("informational", f"{ix.type}/{instance_id} exists and may be deleted", severity="information")]


def check_resource(ix: Interaction, resource: Any, mode: str | None, instance_id: str | None,
                   profile: str | None) -> list[Issue]:
    """Every problem of the resource, each once: structure and required bindings, its id for the mode, and
    the profiles it must meet and the one named."""
    validator = ix.services.validator
    try:
        resource_type = validator.resource_type_of(resource, ix.type)
    except FhirError as exc:
        return exc.issues
    issues, profiled = validator.findings(resource, resource_type, [profile] if profile else None)
    if mode == "update" or (instance_id is not None and mode is None and "id" in resource):
        issues.extend(unnamed(check_update_id(resource, resource_type, instance_id, required=mode == "update"),
                              issues))
    if mode == "create" and "id" in resource and instance_id is not None:
        issues.append(Issue("invalid", "mode=create is a type-level validation; use mode=update for an instance",
                            (f"{resource_type}.id",)))
    return issues + profiled


def check_update_id(resource: dict[str, Any], resource_type: str, instance_id: str | None, *, required: bool
                    ) -> list[Issue]:
    body_id = resource.get("id")
    if body_id is None:
        return [Issue("required", "An update needs the id in the resource", (f"{resource_type}.id",))] \
            if required else []
    if instance_id is not None and body_id != instance_id:
        return [Issue("invalid", f"The id in the resource ({body_id!r}) must equal the id in the URL "
                                 f"({instance_id!r})", (f"{resource_type}.id",))]
    return []
