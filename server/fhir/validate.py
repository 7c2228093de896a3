"""Structural validation of a resource: R4B model, FHIR JSON rules and required bindings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
import pydantic

from .bindings import BindingChecker
from .outcome import FhirError, Issue
from .types import TypeRegistry

if TYPE_CHECKING:
    from .profiles import ProfileValidator

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_REPORTED_ISSUES = 50
SUSPECT_MARKERS = (b"{}", b"[]", b'""', b"\\u00", b"\\b", b"\\f")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def location_of(resource_type: str, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into a FHIRPath expression (`Patient.name[0].family`)."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "__root__" or not isinstance(part, str):
            continue
        else:
            path += "." + part
    return path


def may_hold_empty_elements(resource: dict[str, Any]) -> bool:
    """A fast screen on the serialised text: only resources that might break the rule are walked."""
    text = orjson.dumps(resource)
    return any(marker in text for marker in SUSPECT_MARKERS)


def empty_elements(value: Any, path: str, found: list[str]) -> None:
    """Collect paths of empty objects, arrays and strings, and of strings with control characters."""
    if isinstance(value, dict):
        if not value:
            found.append(path)
            return
        for key, item in value.items():
            if isinstance(item, (dict, list, str)):
                empty_elements(item, f"{path}.{key}", found)
    elif isinstance(value, list):
        if not value:
            found.append(path)
            return
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, str)):
                empty_elements(item, f"{path}[{index}]", found)
    elif value == "" or (CONTROL.search(value) is not None):
        found.append(path)


class ResourceValidator:
    """Checks that a JSON resource is a structurally valid R4 resource of a served type, and that it meets
    the profiles it claims or the server mandates (when a profile validator is given)."""

    def __init__(self, types: TypeRegistry, bindings: BindingChecker, profiles: ProfileValidator | None = None) -> None:
        self.types = types
        self.bindings = bindings
        self.profiles = profiles

    def resource_type_of(self, resource: Any, expected: str | None = None) -> str:
        """Check the body is a JSON object naming a served type (the expected one, if given)."""
        if not isinstance(resource, dict):
            raise FhirError(400, [Issue("structure", "The body must be a JSON object holding a FHIR resource")])
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not resource_type:
            raise FhirError(400, [Issue("structure", "The resource has no 'resourceType'",
                                        expression=("resourceType",))])
        if expected is not None and resource_type != expected:
            raise FhirError(400, [Issue(
                "invalid",
                f"The body holds a {resource_type} but the request is for {expected}",
                expression=("resourceType",),
            )])
        if resource_type not in self.types.supported:
            self.types.require(resource_type)
        return resource_type

    def validate(self, resource: Any, expected: str | None = None) -> str:
        """Validate fully; return the resource type or raise FhirError listing every problem: 400 for
        structure and required bindings, 422 for a profile the resource must meet but does not."""
        resource_type = self.check_structure(resource, expected)
        if self.profiles is not None:
            problems = self.profiles.check(resource, resource_type)
            if any(problem.severity in ("error", "fatal") for problem in problems):
                raise FhirError(422, problems[:MAX_REPORTED_ISSUES])
        return resource_type

    def check_structure(self, resource: Any, expected: str | None = None) -> str:
        """R4B structure, FHIR JSON rules and required bindings; raises FhirError(400) listing every problem."""
        resource_type = self.resource_type_of(resource, expected)
        issues: list[Issue] = []
        resource_id = resource.get("id")
        if resource_id is not None and not (isinstance(resource_id, str) and ID_PATTERN.match(resource_id)):
            issues.append(Issue("value", f"Invalid id {resource_id!r}: 1-64 of A-Z a-z 0-9 - .",
                                expression=(f"{resource_type}.id",)))
        empties: list[str] = []
        if may_hold_empty_elements(resource):
            empty_elements(resource, resource_type, empties)
        issues.extend(
            Issue("structure", f"Empty element or control character at {path}: FHIR JSON forbids empty "
                  "objects, arrays and strings, and characters below U+0020 other than tab, CR and LF",
                  expression=(path,))
            for path in empties[:MAX_REPORTED_ISSUES]
        )
        try:
            self.types.model(resource_type).model_validate(resource)
        except pydantic.ValidationError as exc:
            for err in exc.errors()[:MAX_REPORTED_ISSUES]:
                where = location_of(resource_type, tuple(err.get("loc", ())))
                message = str(err.get("msg", "invalid")).replace("\n", " ")
                message = re.sub(r"\s+", " ", message)
                issues.append(Issue("structure", f"{where}: {message}", expression=(where,)))
        except (ValueError, TypeError) as exc:
            issues.append(Issue("structure", f"{resource_type}: {exc}", expression=(resource_type,)))
        if not issues:
            for problem in self.bindings.check(resource)[:MAX_REPORTED_ISSUES]:
                issues.append(Issue("code-invalid", problem.message, expression=(problem.expression,)))
        if issues:
            raise FhirError(400, issues)
        return resource_type
