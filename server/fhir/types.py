"""The registry of resource types the server supports, from the vendored R4 definitions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from .outcome import FhirError, Issue


@dataclass(frozen=True)
class TypeRegistry:
    """Which R4 resource types are served, and which R4 types are refused."""

    supported: frozenset[str]
    refused: frozenset[str]

    @classmethod
    def load(cls) -> TypeRegistry:
        data = json.loads(read_profile_text("r4/resource-types.json"))
        return cls(frozenset(data["supported"]), frozenset(data["refused"]))

    def model(self, resource_type: str) -> Any:
        """The fhir.resources model class of a supported type."""
        return model_class(resource_type)

    def require(self, resource_type: str) -> str:
        """Return the type if served, else raise 404 with an OperationOutcome saying why."""
        if resource_type in self.supported:
            return resource_type
        if resource_type in self.refused:
            raise FhirError(404, [Issue(
                code="not-supported",
                diagnostics=(
                    f"Resource type '{resource_type}' is an R4 type this server does not support: "
                    "its structure cannot be validated (no model for it in fhir.resources.R4B)"
                ),
            )])
        raise FhirError(404, [Issue(code="not-supported", diagnostics=f"Unknown resource type '{resource_type}'")])


@cache
def model_class(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def load_models(registry: TypeRegistry) -> None:
    """Import the model of every supported type now (about a second), not on each type's first request."""
    for resource_type in sorted(registry.supported):
        model_class(resource_type)


def read_profile_text(relative: str) -> str:
    """Read a data file shipped in the profiles package (works installed or editable)."""
    node = resources.files("profiles")
    for part in relative.split("/"):
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")
