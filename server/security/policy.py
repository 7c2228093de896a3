"""The access policy: the one place that decides whether a caller may do something."""

from __future__ import annotations

from ..fhir.outcome import FhirError, Issue
from .context import Caller


def authorize(caller: Caller, action: str, resource_type: str) -> None:
    """Raise 403 with an OperationOutcome unless the caller may do `action` on `resource_type`."""
    if not caller.allows(action, resource_type):
        raise FhirError(403, [Issue(
            "forbidden", f"{caller.subject} may not {action} {resource_type} resources",
        )])
