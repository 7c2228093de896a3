"""Registering clients: what a registration may hold (kinds with a policy, system scopes, public keys only,
https key URLs), and the commands that register, list and revoke them, make keys and get tokens."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from joserfc.jwk import ECKey, RSAKey

from server.app import create_app
from server.cli import main
from server.config import Settings
from server.security.clients import ClientError, ClientRegistry
from server.security.keys import generate_private_key
from tests.auth import auth_of
from tests.conftest import create_database
from tests.security.token_support import bearer_refused, plain_client


@pytest.fixture()
def registry(app: Flask) -> ClientRegistry:
    return auth_of(app).registry


def public(alg: str = "ES384") -> dict:
    return {"keys": [generate_private_key(alg).as_dict(private=False)]}


def refused(registry: ClientRegistry, text: str, **registration: object) -> None:
    values: dict = {"organization": "A81001", "kind": "gp", "scope": "system/Patient.rs", "jwks": public()}
    values.update(registration)
    with pytest.raises(ClientError, match=text):
        registry.add(f"refused-{len(text)}", **values)


def test_a_registration_holds_an_organisation_kind_system_scopes_and_public_keys(registry: ClientRegistry) -> None:
    client = registry.add("gp-a81001-1", organization="A81001", kind="gp", scope="system/Patient.read system/*.rs",
                          jwks=public("RS384"))
    assert client.organization == "https://fhir.nhs.uk/Id/ods-organization-code|A81001"
    assert client.scope == "system/Patient.rs system/*.rs" and client.active
    found = registry.get("gp-a81001-1")
    assert found is not None and found.jwks == client.jwks and found.kind == "gp"
    assert "gp-a81001-1" in [c.id for c in registry.list()]
    with pytest.raises(ClientError, match="already registered"):
        registry.add("gp-a81001-1", organization="A81001", kind="gp", scope="system/Patient.rs", jwks=public())
    assert registry.revoke("gp-a81001-1").revoked is not None
    with pytest.raises(ClientError, match="no client"):
        registry.revoke("no-such-client")


def test_an_id_of_the_servers_own_components_is_refused(registry: ClientRegistry) -> None:
    """`system:` subjects are in-process components acting for the host (whole record): no client may be one."""
    with pytest.raises(ClientError, match="in-process components"):
        registry.add("system:gp-feed", organization="A81001", kind="gp", scope="system/Patient.rs", jwks=public())
    assert registry.get("system:gp-feed") is None


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_private_symmetric_weak_or_unnamed_keys_are_refused(registry: ClientRegistry) -> None:
    private = generate_private_key("ES384").as_dict(private=True)
    refused(registry, "private key material", jwks={"keys": [private]})
    refused(registry, "private key material", jwks=private)
    refused(registry, "private key material", jwks={"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]})
    refused(registry, "kty 'oct'", jwks={"keys": [{"kty": "oct", "kid": "k"}]})
    weak = RSAKey.import_key(rsa.generate_private_key(65537, 1024).public_key()).as_dict(private=False)
    refused(registry, "at least 2048 bits", jwks={"keys": [{**weak, "kid": "weak"}]})
    p256 = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()).public_key()).as_dict(private=False)
    refused(registry, "P-384", jwks={"keys": [{**p256, "kid": "p256"}]})
    unnamed = {k: v for k, v in public()["keys"][0].items() if k != "kid"}
    refused(registry, "no kid", jwks={"keys": [unnamed]})
    twice = public()["keys"][0]
    refused(registry, "used by another", jwks={"keys": [twice, twice]})
    refused(registry, "not a signature key", jwks={"keys": [{**twice, "use": "enc"}]})
    refused(registry, "JWK Set", jwks={"keys": []})
    refused(registry, "exactly one", jwks=public(), jwks_uri="https://keys.example.org/jwks.json")
    refused(registry, "exactly one", jwks=None)


def test_key_urls_must_be_https(registry: ClientRegistry) -> None:
    for uri in ("http://keys.example.org/jwks.json", "https://user:pw@keys.example.org/jwks",
                "https:///jwks.json", "file:///etc/passwd", "https://keys.example.org/jwks#x"):
        refused(registry, "https URL", jwks=None, jwks_uri=uri)
    client = registry.add("uri-client-1", organization="RAA", kind="hospital", scope="system/Patient.rs",
                          jwks_uri="https://keys.example.org/jwks.json")
    assert client.jwks is None and client.jwks_uri == "https://keys.example.org/jwks.json"


def test_scopes_must_be_system_resource_scopes(registry: ClientRegistry) -> None:
    refused(registry, "not SMART resource scopes: openid", scope="openid system/Patient.rs")
    refused(registry, "system/ scopes only", scope="patient/Patient.rs")
    refused(registry, "at least one scope", scope="  ")
    refused(registry, "not SMART resource scopes", scope="system/Patient.xyz")


def test_a_kind_needs_a_policy_file_when_the_policies_exist(app: Flask, tmp_path: Path) -> None:
    refused(auth_of(app).registry, "no access policy for kind 'nosuch'", kind="nosuch")
    refused(auth_of(app).registry, "lower-case name", kind="GP")
    refused(auth_of(app).registry, "no access policy", kind="compartment")  # a policy folder file, not a kind
    (tmp_path / "voluntary-sector.yaml").write_text("kind: voluntary-sector\npatients: []\n", encoding="utf-8")
    (tmp_path / "mislabelled.yaml").write_text("kind: other\n", encoding="utf-8")
    registry = ClientRegistry(auth_of(app).database, [tmp_path])
    assert registry.add("vol-1", organization="V0001", kind="voluntary-sector", scope="system/Patient.rs",
                        jwks=public()).kind == "voluntary-sector"
    refused(registry, "no access policy", kind="mislabelled")
    refused(registry, "no access policy", kind="gp")  # this registry knows only the folder it was given
    assert ClientRegistry(auth_of(app).database, []).add(
        "anykind-1", organization="X1", kind="any-kind", scope="system/Patient.rs", jwks=public()).kind == "any-kind"


def test_the_commands_register_list_revoke_make_keys_and_get_tokens(tmp_path: Path) -> None:
    url, drop = create_database(tmp_path)
    base = "http://care.example.org/fhir"
    env = {"DATABASE_URL": url, "BASE_URL": base}
    runner = CliRunner()
    try:
        made = runner.invoke(main, ["keys", "generate", "--out", str(tmp_path / "gp.json"), "--alg", "RS384"])
        assert made.exit_code == 0, made.output
        public_path = tmp_path / "gp.jwks.json"
        assert str(public_path) in made.output
        assert "d" in json.loads((tmp_path / "gp.json").read_text())
        assert (tmp_path / "gp.json").stat().st_mode & 0o077 == 0
        assert all("d" not in key for key in json.loads(public_path.read_text())["keys"])
        added = runner.invoke(main, ["clients", "add", "gp-1", "--organization", "A81001", "--kind", "gp",
                                     "--scope", "system/Patient.rs system/CarePlan.rs", "--jwks", str(public_path)],
                              env=env)
        assert added.exit_code == 0, added.output
        bad = runner.invoke(main, ["clients", "add", "gp-2", "--organization", "A81001", "--kind", "gp", "--scope",
                                   "system/Patient.rs", "--jwks", str(tmp_path / "gp.json")], env=env)
        assert bad.exit_code != 0 and "private key material" in bad.output
        listed = runner.invoke(main, ["clients", "list"], env=env)
        assert "gp-1\tactive\tgp\thttps://fhir.nhs.uk/Id/ods-organization-code|A81001" in listed.output
        got = runner.invoke(main, ["token", "--client", "gp-1", "--key", str(tmp_path / "gp.json"),
                                   "--scope", "system/Patient.rs system/Condition.rs"], env=env)
        assert got.exit_code == 0, got.output
        token = got.stdout.strip().splitlines()[-1]
        app = create_app(replace(Settings.from_env(env), database_url=url))
        try:
            anonymous = plain_client(app)
            answer = anonymous.get("/fhir/CarePlan?_count=1", headers={"Authorization": f"Bearer {token}"},
                                   base_url="http://care.example.org")
            assert answer.status_code == 403  # a token, but CarePlan was not asked for
            answer = anonymous.get("/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {token}"},
                                   base_url="http://care.example.org")
            assert answer.status_code == 200, answer.get_json()
            revoked = runner.invoke(main, ["clients", "revoke", "gp-1"], env=env)
            assert revoked.exit_code == 0, revoked.output
            assert "gp-1\trevoked" in runner.invoke(main, ["clients", "list"], env=env).output
            refused_token = anonymous.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"},
                                          base_url="http://care.example.org")
            if refused_token.status_code == 200:  # this process reads revocations at most once a second
                time.sleep(1.1)
                refused_token = anonymous.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"},
                                              base_url="http://care.example.org")
            bearer_refused(refused_token, "revoked")
            again = runner.invoke(main, ["token", "--client", "gp-1", "--key", str(tmp_path / "gp.json")], env=env)
            assert again.exit_code != 0 and "unauthorized_client" in again.output
        finally:
            app.extensions["sharedcare"].services.database.dispose()
    finally:
        drop()  # type: ignore[operator]
