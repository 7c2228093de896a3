"""FhirRequest and FhirResponse: one FHIR interaction, independent of Flask (bundles reuse them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..fhir.outcome import FhirError, Issue, bad_request
from ..store.repository import StoredResource

RETURN_PREFERENCES = ("minimal", "representation", "OperationOutcome")


@dataclass
class FhirRequest:
    """What a client asked for: method, path, parameters, body and the conditional headers."""

    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    raw_body: bytes = b""
    content_type: str = ""
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    if_modified_since: str | None = None
    prefer_return: str | None = None
    prefer_handling: str | None = None
    base_url: str = ""
    in_bundle: bool = False
    query_text: str | None = None  # the URL's query string as sent, when it alone holds the parameters

    @property
    def strict(self) -> bool:
        return self.prefer_handling == "strict"

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def query_params(self) -> list[tuple[str, str]]:
        """Parameters other than output formatting ones."""
        return [(k, v) for k, v in self.params if k not in ("_format", "_pretty")]

    def require_body(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise bad_request("This interaction needs a FHIR resource as a JSON object in the body")
        return self.body


@dataclass
class FhirResponse:
    """An answer: status, a JSON body (text as stored, or a dict), headers, and the version written."""

    status: int
    body: str | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stored: StoredResource | None = None
    subsettable: bool = False

    @classmethod
    def of_resource(cls, stored: StoredResource, status: int = 200, subsettable: bool = True) -> FhirResponse:
        return cls(status, stored.body, version_headers(stored), stored, subsettable)


def version_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": stored.etag, "Last-Modified": stored.last_modified}


def parse_prefer(header: str | None) -> tuple[str | None, str | None]:
    """(return, handling) preferences from a Prefer header."""
    if not header:
        return None, None
    returned = handling = None
    for part in header.split(","):
        for item in part.split(";"):
            key, _, value = item.strip().partition("=")
            value = value.strip().strip('"')
            if key.strip() == "return":
                if value not in RETURN_PREFERENCES:
                    raise FhirError(400, [Issue("invalid", f"Prefer return={value!r}: expected one of "
                                                           f"{', '.join(RETURN_PREFERENCES)}", ("Prefer",))])
                returned = value
            elif key.strip() == "handling" and value in ("strict", "lenient"):
                handling = value
    return returned, handling
