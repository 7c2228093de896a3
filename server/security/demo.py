"""The demo area's clients: one per kind for the demo organisations, their private keys under var/clients/."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..store.db import Database
from .clients import ClientRegistry
from .keys import generate_private_key, private_key_from

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


@dataclass(frozen=True)
class DemoClient:
    """A client the demo registers: its id, kind, organisation and scopes."""

    id: str
    kind: str
    organization: str
    scope: str
    holds: str


def demo_clients(project_base: str, practice: str, hospital: str, council: str,
                 team: tuple[str, list[str]]) -> list[DemoClient]:
    """One client per kind for the demo area's organisations (`team`: a case-management team's ODS code and the
    practices that are part of it)."""
    return [
        DemoClient("demo-gp", "gp", f"{ODS}|{practice}", "system/*.cruds",
                   f"the patients registered at practice {practice}"),
        DemoClient("demo-hospital", "hospital", f"{ODS}|{hospital}", "system/*.rs system/Encounter.cruds "
                   "system/Condition.cruds system/Procedure.cruds system/Observation.cruds",
                   f"the patients admitted to {hospital} in the last 30 days; $case-status for anyone"),
        DemoClient("demo-council", "council", f"{project_base}/Id/council-code|{council}",
                   "system/*.rs system/EpisodeOfCare.cruds system/Encounter.cruds",
                   f"the social care clients of council {council}"),
        DemoClient("demo-case-management", "case-management", f"{ODS}|{team[0]}", "system/*.cruds",
                   f"the patients of the practices of team {team[0]} ({', '.join(team[1])})"),
        DemoClient("demo-auditor", "auditor", f"{ODS}|HOST", "system/AuditEvent.rs", "nobody: the audit trail"),
        DemoClient("demo-admin", "admin", f"{ODS}|HOST", "system/*.cruds", "nobody: conformance resources"),
        DemoClient("demo-integration", "integration", f"{ODS}|HOST", "system/*.cruds", "everyone"),
    ]


def register_demo_clients(database: Database, folder: Path, clients: list[DemoClient]) -> list[tuple[DemoClient, Path]]:
    """Register each client not yet registered, with a key kept in `folder/<id>.jwk` (made once, mode 600)."""
    registry = ClientRegistry(database)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for client in clients:
        path = folder / f"{client.id}.jwk"
        if path.exists():
            key = private_key_from(path.read_text(encoding="utf-8"))
        else:
            key = generate_private_key("ES384")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(key.as_dict(private=True), handle, indent=2)
        if registry.get(client.id) is None:
            registry.add(client.id, organization=client.organization, kind=client.kind, scope=client.scope,
                         jwks={"keys": [key.as_dict(private=False)]})
        made.append((client, path))
    return made


def describe(made: list[tuple[DemoClient, Path]], fhir_base: str) -> str:
    """How to get a token as each demo client, for the demo command to print."""
    lines = ["Demo clients (SMART Backend Services; private keys under var/clients/):"]
    for client, _path in made:
        lines.append(f"  {client.id:22s} {client.kind:16s} holds {client.holds}")
    first = made[0][1] if made else Path("var/clients/demo-gp.jwk")
    lines += [
        "Get a token and call the API, for example:",
        f"  TOKEN=$(.venv/bin/sharedcare token --client demo-gp --key {first})",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{fhir_base}/Patient?_count=2&_elements=name'",
    ]
    return "\n".join(lines)
