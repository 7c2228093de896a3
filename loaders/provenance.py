"""The Provenance of a file load: which source system sent which file with which extract date.

Its id is derived from the file's content, so reloading the same file names the same Provenance (and
writes nothing); every resource the load creates or changes names it in ``meta.source``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

NAMESPACE = uuid.UUID("6f1c2a8e-5d0b-4c43-9a59-3b7f4f2d9e11")
SOURCE_NAMES = {"gp": "GP practice system", "swift": "SWIFT social care system", "hospital": "hospital (SUS/HES)"}


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provenance_id(source: str, org: str, label: str, name: str, encoding: str, digest: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{source}|{org}|{label}|{name}|{encoding}|{digest}"))


def provenance(resource_id: str, source: str, org: str, label: str, name: str, digest: str,
               organisation: dict[str, Any] | None) -> dict[str, Any]:
    """The Provenance resource of one file load (``organisation``: a Reference to the sending organisation)."""
    sender: dict[str, Any] = organisation or {"display": f"{SOURCE_NAMES[source]} {org}"}
    return {
        "resourceType": "Provenance",
        "id": resource_id,
        "target": [{"display": f"the resources whose meta.source is Provenance/{resource_id} "
                               f"(search _source=Provenance/{resource_id})"}],
        "occurredDateTime": label,
        "recorded": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": "UPDATE", "display": "revise"}]},
        "agent": [
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                  "code": "author", "display": "Author"}]},
             "who": sender},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                  "code": "assembler", "display": "Assembler"}]},
             "who": {"display": "sharedcare extract loader"}},
        ],
        "entity": [{"role": "source", "what": {
            "identifier": {"system": "urn:ietf:rfc:3986", "value": named_information(digest)},
            "display": f"{source}/{org}/{label}/{name} ({SOURCE_NAMES[source]} extract of {label})"}}],
    }


def named_information(digest: str) -> str:
    """The file's SHA-256 as an RFC 6920 ``ni`` URI."""
    encoded = base64.urlsafe_b64encode(bytes.fromhex(digest)).decode().rstrip("=")
    return f"ni:///sha-256;{encoded}"
