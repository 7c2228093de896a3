"""Structural validation of a resource: FHIR JSON rules, R4B model and required bindings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pydantic

from .bindings import BindingChecker
from .elements import ElementModel
from .envelope import distinct_entries, relocated
from .outcome import FhirError, Issue
from .strict import StrictJson
from .types import TypeRegistry

if TYPE_CHECKING:
    from .profiles import ProfileValidator

MAX_REPORTED_ISSUES = 50


def location_of(resource_type: str, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into a FHIRPath expression (`Patient.name[0].family`)."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("__root__", "root") or not isinstance(part, str):
            continue
        else:
            path += "." + part.lstrip("_")  # `_given` is the extension side of `given`
    return path


class ResourceValidator:
    """Checks that a JSON resource is a structurally valid R4 resource of a served type, and that it meets
    the profiles it claims or the server mandates (when a profile validator is given)."""

    def __init__(self, types: TypeRegistry, bindings: BindingChecker, profiles: ProfileValidator | None = None) -> None:
        self.types = types
        self.bindings = bindings
        self.profiles = profiles
        self.strict = StrictJson(ElementModel.load())

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
        """FHIR JSON rules, R4B structure and required bindings; raises FhirError(400) listing every problem."""
        resource_type = self.resource_type_of(resource, expected)
        self.refuse_problems(resource, resource_type, resource)
        return resource_type

    def check_envelope(self, bundle: dict[str, Any]) -> None:
        """A batch or transaction Bundle posted to the base, before any entry runs and without the resources
        its entries write (`envelope`): validated as a resource, the R4B model seeing each distinct entry once."""
        self.refuse_problems(bundle, "Bundle", *distinct_entries(bundle))

    def refuse_problems(self, resource: dict[str, Any], resource_type: str, modelled: dict[str, Any],
                        indexes: list[int] | None = None) -> None:
        """Raise FhirError(400) naming every problem: the FHIR JSON rules and required bindings of `resource`,
        the R4B model's issues with `modelled` (the resource, or a stand-in whose entries `indexes` places)
        that name no element the rules named already."""
        issues = self.strict.issues(resource, resource_type)[:MAX_REPORTED_ISSUES]
        if not any(issue.code == "too-costly" for issue in issues):  # too deep for the model to walk
            located = tuple(path for issue in issues for path in issue.expression)
            for issue in self.model_issues(modelled, resource_type):
                issue = issue if indexes is None else relocated(issue, indexes)
                where = issue.expression[0]
                if where not in located and not where.startswith(tuple(f"{p}{c}" for p in located for c in ".[")):
                    issues.append(issue)
        if not issues:
            for problem in self.bindings.check(resource)[:MAX_REPORTED_ISSUES]:
                issues.append(Issue("code-invalid", problem.message, expression=(problem.expression,)))
        if issues:
            raise FhirError(400, issues)

    def model_issues(self, resource: dict[str, Any], resource_type: str) -> list[Issue]:
        """What the R4B model refuses (cardinality, choices, required elements, calendar dates)."""
        try:
            self.types.model(resource_type).model_validate(resource)
        except pydantic.ValidationError as exc:
            issues = []
            for err in exc.errors()[:MAX_REPORTED_ISSUES]:
                where = location_of(resource_type, tuple(err.get("loc", ())))
                message = re.sub(r"\s+", " ", str(err.get("msg", "invalid")))
                issues.append(Issue("structure", f"{where}: {message}", expression=(where,)))
            return issues
        except (ValueError, TypeError) as exc:
            return [Issue("structure", f"{resource_type}: {exc}", expression=(resource_type,))]
        return []
