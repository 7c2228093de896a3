"""Bearer tokens on the FHIR API: what opens it, what is refused (401 with an RFC 6750 challenge and an
OperationOutcome), revocation by an administrator and of clients, and the paths open without a token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from sqlalchemy import func, select

from server.app import create_app
from server.config import Settings
from server.security.events import BEARER, ISSUED, REFUSED, TOKEN, AuthEvent
from server.security.keys import generate_private_key, private_key_from
from server.security.tokenclient import sign_assertion
from server.store.schema import signing_keys
from tests.auth import ClientKey, register_client, token_for
from tests.conftest import create_database
from tests.security.token_support import (
    BASE,
    REVOKE_PATH,
    TOKEN_PATH,
    auth_of,
    b64,
    bearer_refused,
    form,
    hand_made,
    oauth_error,
    parts,
    plain_client,
)


@pytest.fixture()
def anonymous(app: Flask) -> FlaskClient:
    return plain_client(app)


@pytest.fixture()
def registered(app: Flask) -> ClientKey:
    return register_client(app, scope="system/Patient.rs")


@pytest.fixture(scope="module")
def other_process(settings: Settings) -> Iterator[Flask]:
    """Another app on the same database, with its own caches: a second server process."""
    application = create_app(settings)
    yield application
    application.extensions["sharedcare"].services.database.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reads(client: FlaskClient, token: str) -> int:
    return client.get("/fhir/Patient?_count=1", headers=bearer(token)).status_code


def test_a_valid_token_opens_the_api_and_no_token_gets_a_challenge(anonymous: FlaskClient,
                                                                    registered: ClientKey, app: Flask) -> None:
    assert reads(anonymous, token_for(app, registered)) == 200
    for method, path in (("GET", "/fhir/Patient"), ("GET", "/fhir"), ("POST", "/fhir"), ("GET", "/fhir/_history"),
                         ("PUT", "/fhir/Patient/x"), ("GET", "/fhir/Patient/x/_history"),
                         ("DELETE", "/fhir/Patient/x"), ("GET", "/fhir/$outcomes"), ("POST", "/fhir/metadata")):
        challenge = bearer_refused(anonymous.open(path, method=method), "no bearer token", error=None)
        assert challenge == f'Bearer realm="{BASE}"'
    bearer_refused(anonymous.get("/fhir/Patient", headers={"Authorization": "Basic dXNlcjpwYXNz"}), error=None)
    bearer_refused(anonymous.get("/fhir/Patient", headers={"Authorization": "Bearer "}), "malformed")
    bearer_refused(anonymous.get("/fhir/Patient", headers={"Authorization": "Bearer a b"}), "malformed")


def test_an_expired_token_is_refused(app: Flask, anonymous: FlaskClient, registered: ClientKey) -> None:
    auth = auth_of(app)
    client = auth.registry.get(registered.client_id)
    assert client is not None
    expired, _grant = auth.tokens.issue(client, "system/Patient.rs", BASE, now=time.time() - 301)
    challenge = bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(expired)), "expired")
    assert 'error_description="The access token is not valid: the token has expired"' in challenge
    fresh, _grant = auth.tokens.issue(client, "system/Patient.rs", BASE, now=time.time() - 200)
    assert reads(anonymous, fresh) == 200


def test_a_tampered_token_is_refused(app: Flask, anonymous: FlaskClient, registered: ClientKey) -> None:
    token = token_for(app, registered)
    header, _payload, signature = token.split(".")
    claims = parts(token)[1]
    for changed in ({**claims, "scope": "system/*.cruds"}, {**claims, "kind": "admin"},
                    {**claims, "exp": claims["exp"] + 3600}):
        forged = f"{header}.{b64(json.dumps(changed).encode())}.{signature}"
        bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(forged)), "signature")
    flipped = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(flipped)), "signature")
    assert reads(anonymous, token) == 200


def test_a_token_for_another_fhir_base_is_refused(app: Flask, anonymous: FlaskClient, registered: ClientKey) -> None:
    elsewhere = "http://other.example.org"
    assertion = sign_assertion(registered.client_id, registered.key, f"{elsewhere}/fhir/auth/token")
    answer = anonymous.post(TOKEN_PATH, data=form(assertion), base_url=elsewhere)
    assert answer.status_code == 200, answer.get_json()
    token = answer.get_json()["access_token"]
    assert anonymous.get("/fhir/Patient", headers=bearer(token), base_url=elsewhere).status_code == 200
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(token)), f"issued for {elsewhere}/fhir")


def test_tokens_not_signed_by_the_servers_key_are_refused(app: Flask, anonymous: FlaskClient,
                                                           registered: ClientKey) -> None:
    genuine = token_for(app, registered)
    header, claims = parts(genuine)
    published = anonymous.get("/fhir/auth/jwks").get_json()["keys"][0]
    assert "d" not in published and published["kid"] == header["kid"]
    same_kid = generate_private_key(header["alg"], kid=header["kid"])
    forged = jwt.encode(header, claims, same_kid, algorithms=[header["alg"]])
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(forged)), "signature")
    unknown = generate_private_key("ES384")
    forged = jwt.encode({**header, "kid": unknown.kid}, claims, unknown, algorithms=["ES384"])
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(forged)), "key this server does not have")
    unsigned = hand_made({**header, "alg": "none"}, claims)
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(unsigned)), "alg 'none'")
    server_key = auth_of(app).keys.current()
    for secret in (server_key.as_pem(private=False), str(published).encode()):
        hmac_signed = hand_made({**header, "alg": "HS384"}, claims, secret)
        bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(hmac_signed)), "alg 'HS384'")
    assertion = sign_assertion(registered.client_id, registered.key, BASE, claims={"scope": "system/*.cruds"})
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(assertion)), "not an access token")


def test_an_administrator_revokes_a_token_for_every_process(app: Flask, anonymous: FlaskClient,
                                                             registered: ClientKey, other_process: Flask) -> None:
    admin = register_client(app, kind="admin", scope="system/StructureDefinition.rs")
    victim = token_for(app, registered)
    elsewhere = plain_client(other_process)
    assert reads(anonymous, victim) == 200 and reads(elsewhere, victim) == 200  # now cached in both
    bearer_refused(anonymous.post(REVOKE_PATH, data={"token": victim}), error=None)
    oauth_error(anonymous.post(REVOKE_PATH, data={"token": victim}, headers=bearer(victim)), 403,
                "unauthorized_client", "administrators")
    admin_token = token_for(app, admin)
    oauth_error(anonymous.post(REVOKE_PATH, data={}, headers=bearer(admin_token)), 400, "invalid_request")
    assert reads(anonymous, victim) == 200
    revoked = anonymous.post(REVOKE_PATH, data={"token": victim}, headers=bearer(admin_token))
    assert revoked.status_code == 200 and revoked.headers["Cache-Control"] == "no-store"
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(victim)), "revoked")  # at once here
    assert seconds_until_refused(elsewhere, victim) <= 1.5  # within a second in another process
    ignored = anonymous.post(REVOKE_PATH, data={"token": "not-a-token"}, headers=bearer(admin_token))
    assert ignored.status_code == 200  # RFC 7009: nothing to revoke is no error
    assert anonymous.get("/fhir/StructureDefinition?_count=1", headers=bearer(admin_token)).status_code == 200


def seconds_until_refused(client: FlaskClient, token: str, limit: float = 5.0) -> float:
    started = time.monotonic()
    while reads(client, token) == 200:
        assert time.monotonic() - started < limit, "the revocation was never seen"
        time.sleep(0.05)
    return time.monotonic() - started


def test_revoking_a_client_revokes_its_tokens(app: Flask, anonymous: FlaskClient, registered: ClientKey,
                                              other_process: Flask) -> None:
    token = token_for(app, registered)
    elsewhere = plain_client(other_process)
    assert reads(anonymous, token) == 200 and reads(elsewhere, token) == 200
    auth_of(app).revoke_client(registered.client_id)
    bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(token)), "revoked")
    assert seconds_until_refused(elsewhere, token) <= 1.5


def test_open_paths_answer_without_a_token(anonymous: FlaskClient) -> None:
    capability = anonymous.get("/fhir/metadata")
    assert capability.status_code == 200
    security = capability.get_json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR",
        "display": "SMART-on-FHIR"}
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert security["extension"][0]["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris == {"token": f"{BASE}/auth/token", "revoke": f"{BASE}/auth/revoke"}
    for accept in ("application/json", "application/xml", "text/html"):
        configuration = anonymous.get("/fhir/.well-known/smart-configuration", headers={"Accept": accept})
        assert configuration.status_code == 200
        assert configuration.headers["Content-Type"].startswith("application/json")
    document = configuration.get_json()
    assert document["token_endpoint"] == f"{BASE}/auth/token"
    assert document["revocation_endpoint"] == f"{BASE}/auth/revoke"
    assert document["grant_types_supported"] == ["client_credentials"]
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert {"client-confidential-asymmetric", "permission-v2", "permission-v1"} <= set(document["capabilities"])
    assert "system/*.cruds" in document["scopes_supported"]
    keys = anonymous.get("/fhir/auth/jwks").get_json()["keys"]
    assert keys and all(not {"d", "p", "q"} & set(key) for key in keys)
    assert anonymous.get("/health").get_json()["status"] == "ok"
    assert anonymous.head("/fhir/metadata").status_code == 200


def test_the_caller_carries_client_organisation_kind_scopes_purpose_and_break_glass(
        app: Flask, registered: ClientKey) -> None:
    token = token_for(app, registered)
    auth = auth_of(app)
    caller = auth.authenticate(f"Bearer {token}", BASE, purpose="ETREAT", break_glass="Unconscious in A&E",
                               request_id="r-1")
    assert caller.subject == registered.client_id and caller.organization == registered.organization
    assert caller.kind == "integration" and caller.scopes.text() == "system/Patient.rs"
    assert caller.token_id == parts(token)[1]["jti"] and caller.request_id == "r-1"
    assert caller.purpose == "ETREAT" and caller.break_glass == "Unconscious in A&E"
    coded = auth.authenticate(f"bearer {token}", BASE, break_glass="reason",
                              purpose="http://terminology.hl7.org/CodeSystem/v3-ActReason|ETREAT")
    assert coded.break_glass == "reason"
    routine = auth.authenticate(f"Bearer {token}", BASE, purpose="TREAT", break_glass="no emergency")
    assert routine.purpose == "TREAT" and routine.break_glass is None and routine.request_id is None
    assert token in auth.authenticator.cache  # verified once, then kept


def test_token_requests_and_refused_bearers_reach_the_auth_event_hook(other_process: Flask) -> None:
    events: list[AuthEvent] = []
    http = other_process.wsgi_app
    http.on_auth_event = lambda event, _environ: events.append(event)  # type: ignore[attr-defined]
    try:
        client = register_client(other_process, scope="system/Patient.rs")
        anonymous = plain_client(other_process)
        token = token_for(other_process, client)
        bearer_refused(anonymous.get("/fhir/Patient", headers=bearer(token + "x")))
        oauth_error(anonymous.post(TOKEN_PATH, data=form("x")), 401, "invalid_client")
    finally:
        http.on_auth_event = None  # type: ignore[attr-defined]
    issued, refused_bearer, refused_token = events
    assert (issued.action, issued.outcome, issued.client_id, issued.organization, issued.kind) == (
        TOKEN, ISSUED, client.client_id, client.organization, "integration")
    assert issued.token_id == parts(token)[1]["jti"] and issued.scope == "system/Patient.rs"
    assert (refused_bearer.action, refused_bearer.outcome, refused_bearer.error) == (BEARER, REFUSED, "invalid_token")
    assert (refused_token.action, refused_token.outcome, refused_token.error) == (TOKEN, REFUSED, "invalid_client")


def test_processes_racing_to_make_the_signing_key_make_one(tmp_path: Path) -> None:
    url, drop = create_database(tmp_path)
    apps = [create_app(Settings.from_env({}, database_url=url)) for _ in range(4)]
    try:
        barrier = threading.Barrier(len(apps))
        kids: list[str] = []

        def first_use(application: Flask) -> None:
            barrier.wait()
            kids.append(str(auth_of(application).keys.current().kid))

        threads = [threading.Thread(target=first_use, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(kids) == len(apps) and len(set(kids)) == 1
        with apps[0].extensions["sharedcare"].services.database.writer.connect() as connection:
            rows = connection.execute(select(signing_keys.c.private_jwk)).scalars().all()
            assert connection.execute(select(func.count()).select_from(signing_keys)).scalar_one() == 1
        assert private_key_from(rows[0]).kid == kids[0]
    finally:
        for application in apps:
            application.extensions["sharedcare"].services.database.dispose()
        drop()  # type: ignore[operator]
