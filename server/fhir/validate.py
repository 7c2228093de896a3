"""Structural validation of a resource: FHIR JSON rules, R4B model and required bindings."""

from __future__ import annotations

import logging
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
log = logging.getLogger(__name__)


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


def too_costly(issues: list[Issue]) -> bool:
    """Whether the resource is nested too deep for any check after the FHIR JSON rules to walk it."""
    return any(issue.code == "too-costly" for issue in issues)


def unnamed(issues: list[Issue], named: list[Issue]) -> list[Issue]:
    """The `issues` about no location `named` names: not at one, inside one, nor holding one below the
    resource itself (a rule on an element whose content was refused judged that content): each problem once."""
    located = {path for issue in named for path in issue.expression}
    inside = tuple(f"{path}{step}" for path in located for step in ".[")

    def said(path: str) -> bool:
        if path in located or path.startswith(inside):
            return True
        return "." in path and any(other.startswith((f"{path}.", f"{path}[")) for other in located)
    return [issue for issue in issues if not issue.expression or not any(said(p) for p in issue.expression)]


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
        """Validate fully; return the resource type or raise FhirError naming every problem once: 400 when
        the FHIR JSON rules, the R4B model or a required binding is broken (with the problems of its profiles
        besides), 422 when only a profile the resource must meet is."""
        resource_type = self.resource_type_of(resource, expected)
        structure, profiled = self.findings(resource, resource_type)
        if structure:
            raise FhirError(400, (structure + profiled)[:MAX_REPORTED_ISSUES])
        if any(problem.severity in ("error", "fatal") for problem in profiled):
            raise FhirError(422, profiled[:MAX_REPORTED_ISSUES])
        return resource_type

    def findings(self, resource: dict[str, Any], resource_type: str, also: list[str] | None = None
                 ) -> tuple[list[Issue], list[Issue]]:
        """Every problem of a resource, each once with its location: those of the FHIR JSON rules, the R4B
        model and the required bindings; then those of the profiles it must meet (and the profiles `also`
        names) at locations the first named not."""
        structure = self.structure_issues(resource, resource_type, resource)
        if self.profiles is None or too_costly(structure):
            return structure, []
        try:
            profiled = self.profiles.check(resource, resource_type, also)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):
            if not structure:
                raise
            log.warning("profile check of a %s that breaks the FHIR JSON rules failed", resource_type, exc_info=True)
            return structure, []  # what breaks the rules is named; the profiles are checked once it is fixed
        return structure, unnamed(profiled, structure)

    def check_envelope(self, bundle: dict[str, Any]) -> None:
        """A batch or transaction Bundle posted to the base, before any entry runs and without the resources
        its entries write (`envelope`): validated as a resource, the R4B model seeing each distinct entry once."""
        issues = self.structure_issues(bundle, "Bundle", *distinct_entries(bundle))
        if issues:
            raise FhirError(400, issues)

    def structure_issues(self, resource: dict[str, Any], resource_type: str, modelled: dict[str, Any],
                         indexes: list[int] | None = None) -> list[Issue]:
        """Every problem, each once: the FHIR JSON rules of `resource`, then the R4B model's issues with
        `modelled` (the resource, or a stand-in whose entries `indexes` places) and the required bindings of
        `resource`, each where the ones before named nothing."""
        issues = self.strict.issues(resource, resource_type)[:MAX_REPORTED_ISSUES]
        if too_costly(issues):  # too deep for the model and the bindings to walk
            return issues
        modelling = self.model_issues(modelled, resource_type)
        issues += unnamed(modelling if indexes is None else [relocated(i, indexes) for i in modelling], issues)
        binding = [Issue("code-invalid", problem.message, expression=(problem.expression,))
                   for problem in self.bindings.check(resource)[:MAX_REPORTED_ISSUES]]
        issues += unnamed(binding, issues)
        return list(dict.fromkeys(issues))[:MAX_REPORTED_ISSUES]

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
