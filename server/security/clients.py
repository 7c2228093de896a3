"""The registry of system clients: each one's organisation, kind, registered scopes and public keys."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources as package_files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..store.db import Database, transaction
from ..store.schema import clients
from .context import IN_PROCESS
from .jwks import JwksError, PublicKey, check_jwks_uri, public_keys
from .scopes import ScopeSet, parse_scopes

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
KIND_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
BACKEND_CONTEXT = "system"


class ClientError(ValueError):
    """A registration that cannot be made (bad kind, scope, keys or id), or an unknown client."""


@dataclass(frozen=True)
class Client:
    """A registered system client (SMART Backend Services)."""

    id: str
    organization: str
    kind: str
    scope: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    created: int
    revoked: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    @property
    def scopes(self) -> ScopeSet:
        return ScopeSet.of(self.scope)

    def keys(self) -> list[PublicKey]:
        """The keys registered by value (none for a jwks_uri client)."""
        return public_keys(self.jwks, f"the registered JWKS of {self.id}") if self.jwks else []


def organization_token(code: str) -> str:
    """`system|value` of an organisation; a bare code is an ODS code."""
    code = code.strip()
    if not code or code.startswith("|") or code.endswith("|"):
        raise ClientError(f"organisation {code!r} must be an ODS code or an identifier token system|value")
    return code if "|" in code else f"{ODS}|{code}"


def check_scope(text: str) -> str:
    """The registered scopes in their v2 spelling; every word must be a system resource scope."""
    scopes, others = parse_scopes(text)
    if others:
        raise ClientError(f"not SMART resource scopes: {' '.join(others)}")
    if not scopes:
        raise ClientError("a client needs at least one scope (system/Type.letters)")
    wrong = [scope.text() for scope in scopes if scope.context != BACKEND_CONTEXT]
    if wrong:
        raise ClientError(f"backend services clients hold system/ scopes only, not {' '.join(wrong)}")
    return ScopeSet(tuple(scopes)).text()


def policy_folders(extra: str | Path | None = None) -> list[Traversable | Path]:
    """Where the access policies live: profiles/access/ when that folder exists, and `extra` when given
    (ACCESS_POLICY_DIR)."""
    bundled = package_files.files("profiles").joinpath("access")
    found: list[Traversable | Path] = [bundled] if bundled.is_dir() else []
    if extra:
        found.append(Path(extra))
    return found


def check_kind(kind: str, folders: Iterable[Traversable | Path] | None = None) -> str:
    """A kind name; when policy folders exist, one of them must hold `<kind>.yaml` declaring that kind."""
    if not KIND_NAME.match(kind):
        raise ClientError(f"kind {kind!r} must be a lower-case name (letters, digits and '-')")
    folders = list(policy_folders() if folders is None else folders)
    if not folders:
        return kind
    for folder in folders:
        entry = folder.joinpath(f"{kind}.yaml")
        if entry.is_file():
            data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            if isinstance(data, dict) and data.get("kind") == kind:
                return kind
    raise ClientError(f"no access policy for kind {kind!r} (profiles/access/{kind}.yaml)")


class ClientRegistry:
    """Registered clients in the `clients` table: add, get, list and revoke."""

    def __init__(self, database: Database, policy_folders: Iterable[Traversable | Path] | None = None) -> None:
        self.database = database
        self.folders = None if policy_folders is None else list(policy_folders)

    def add(self, client_id: str, *, organization: str, kind: str, scope: str,
            jwks: dict[str, Any] | str | None = None, jwks_uri: str | None = None) -> Client:
        """Register a client with a public JWKS by value or an https jwks_uri (exactly one)."""
        if not CLIENT_ID.match(client_id):
            raise ClientError(f"client id {client_id!r} must be 1-128 letters, digits and . _ : - characters")
        if client_id.startswith(IN_PROCESS):
            raise ClientError(f"client id {client_id!r}: ids starting {IN_PROCESS!r} name the server's own "
                              "in-process components")
        if (jwks is None) == (jwks_uri is None):
            raise ClientError("give exactly one of a JWKS (by value) or a jwks_uri")
        try:
            if jwks is not None:
                document = json.loads(jwks) if isinstance(jwks, str) else jwks
                public_keys(document)
                jwks = {"keys": document["keys"]}
            else:
                check_jwks_uri(str(jwks_uri))
        except (JwksError, ValueError) as exc:
            raise ClientError(str(exc)) from exc
        client = Client(id=client_id, organization=organization_token(organization),
                        kind=check_kind(kind, self.folders), scope=check_scope(scope), jwks=jwks,
                        jwks_uri=jwks_uri, created=int(time.time()))
        try:
            with transaction(self.database, writing=True) as connection:
                connection.execute(clients.insert().values(
                    id=client.id, organization=client.organization, kind=client.kind, scope=client.scope,
                    jwks=json.dumps(client.jwks) if client.jwks else None, jwks_uri=client.jwks_uri,
                    created=client.created, revoked=None))
        except IntegrityError as exc:
            raise ClientError(f"client {client_id!r} is already registered") from exc
        return client

    def get(self, client_id: str) -> Client | None:
        with transaction(self.database, writing=False) as connection:
            row = connection.execute(select(clients).where(clients.c.id == client_id)).mappings().first()
        return None if row is None else client_of(row)

    def list(self) -> list[Client]:
        with transaction(self.database, writing=False) as connection:
            rows = connection.execute(select(clients).order_by(clients.c.id)).mappings().all()
        return [client_of(row) for row in rows]

    def revoke(self, client_id: str) -> Client:
        """Revoke a client: no new tokens, and its tokens stop working (see Revocations for when)."""
        with transaction(self.database, writing=True) as connection:
            connection.execute(update(clients).where(clients.c.id == client_id, clients.c.revoked.is_(None))
                               .values(revoked=int(time.time())))
        found = self.get(client_id)
        if found is None:
            raise ClientError(f"no client {client_id!r}")
        return found


def client_of(row: Any) -> Client:
    return Client(id=row["id"], organization=row["organization"], kind=row["kind"], scope=row["scope"],
                  jwks=json.loads(row["jwks"]) if row["jwks"] else None, jwks_uri=row["jwks_uri"],
                  created=int(row["created"]), revoked=None if row["revoked"] is None else int(row["revoked"]))
