"""FHIR operations ($name): each module registers its operations with the FhirApi."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import FhirApi


def register_all(api: FhirApi) -> None:
    """Register every operation the server implements."""
    from . import care, everything, subscriptions, terminology, validate

    everything.register(api)
    validate.register(api)
    terminology.register(api)
    care.register(api)
    subscriptions.register(api)
