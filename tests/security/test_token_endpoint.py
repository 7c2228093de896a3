"""The token endpoint (client_credentials, private_key_jwt) against every fault of a client assertion, and the
tokens it grants."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from server.app import create_app
from server.config import Settings
from server.security.keys import generate_private_key
from server.security.tokenclient import sign_assertion
from tests.auth import ClientKey, register_client
from tests.security.servers import DocumentServer
from tests.security.token_support import (
    BASE,
    TOKEN_PATH,
    TOKEN_URL,
    auth_of,
    b64,
    form,
    hand_made,
    oauth_error,
    parts,
    plain_client,
)

SCOPE = "system/Patient.rs system/Observation.cruds"


@pytest.fixture()
def anonymous(app: Flask) -> FlaskClient:
    return plain_client(app)


@pytest.fixture()
def registered(app: Flask) -> ClientKey:
    return register_client(app, scope=SCOPE)


@pytest.fixture(scope="module")
def other_process(settings: Settings) -> Iterator[Flask]:
    """Another app on the same database, with its own caches: a second server process."""
    application = create_app(settings)
    yield application
    application.extensions["sharedcare"].services.database.dispose()


def ask(anonymous: FlaskClient, client: ClientKey, scope: str | None = "system/Patient.rs", **signing: object):
    return anonymous.post(TOKEN_PATH, data=form(sign_assertion(client.client_id, client.key, TOKEN_URL,
                                                               **signing), scope))  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_valid_assertion_gets_a_token_with_the_requested_scopes_narrowed_to_the_registered(
        app: Flask, anonymous: FlaskClient, alg: str) -> None:
    client = register_client(app, scope=SCOPE, alg=alg)
    answer = ask(anonymous, client, "system/Patient.cruds system/Observation.rs system/Condition.rs launch")
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert answer.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "bearer" and body["expires_in"] == 300 and "refresh_token" not in body
    assert body["scope"] == "system/Patient.rs system/Observation.rs"
    jwks = KeySet.import_key_set(anonymous.get("/fhir/auth/jwks").get_json())
    token = jwt.decode(body["access_token"], jwks, algorithms=["ES384", "RS384"])
    claims = token.claims
    assert token.header["typ"] == "at+jwt"
    assert claims["iss"] == TOKEN_URL and claims["aud"] == BASE and claims["sub"] == client.client_id
    assert claims["exp"] - claims["iat"] == 300 and abs(claims["iat"] - time.time()) < 10 and claims["jti"]
    assert claims["scope"] == body["scope"] and claims["kind"] == "integration"
    assert claims["organization"] == client.organization
    authorization = {"Authorization": f"Bearer {body['access_token']}"}
    assert anonymous.get("/fhir/Patient?_count=1", headers=authorization).status_code == 200
    assert anonymous.get("/fhir/Condition?_count=1", headers=authorization).status_code == 403  # not granted


def test_scopes_asked_beyond_the_registered_are_cut_and_nothing_registered_is_invalid_scope(
        anonymous: FlaskClient, registered: ClientKey) -> None:
    assert ask(anonymous, registered, "system/Patient.read").get_json()["scope"] == "system/Patient.rs"
    assert ask(anonymous, registered, "system/Observation.cruds").get_json()["scope"] == "system/Observation.cruds"
    every_type = ask(anonymous, registered, "system/*.rs").get_json()["scope"]  # cut to the registered types
    assert every_type == "system/Patient.rs system/Observation.rs"
    oauth_error(ask(anonymous, registered, "system/Condition.rs user/Patient.rs"), 400, "invalid_scope")
    oauth_error(ask(anonymous, registered, "openid launch"), 400, "invalid_scope")
    oauth_error(ask(anonymous, registered, None), 400, "invalid_scope", "scope is required")


def test_a_malformed_assertion_is_invalid_client(anonymous: FlaskClient, registered: ClientKey) -> None:
    for assertion in ("x", "a.b.c", "a.b", f"{b64(b'{}')}.{b64(b'[]')}.{b64(b'x')}",
                      f"{b64(b'not json')}.{b64(b'{}')}.", "a.b.c.d.e"):
        oauth_error(anonymous.post(TOKEN_PATH, data=form(assertion)), 401, "invalid_client")
    oauth_error(anonymous.post(TOKEN_PATH, data=form("")), 401, "invalid_client")


def test_an_assertion_over_8_kb_is_refused_before_it_is_read(anonymous: FlaskClient, registered: ClientKey) -> None:
    big = sign_assertion(registered.client_id, registered.key, TOKEN_URL, claims={"padding": "x" * 8200})
    assert len(big) > 8192
    oauth_error(anonymous.post(TOKEN_PATH, data=form(big)), 401, "invalid_client", "larger than 8192 bytes")
    small = sign_assertion(registered.client_id, registered.key, TOKEN_URL, claims={"padding": "x" * 4000})
    assert anonymous.post(TOKEN_PATH, data=form(small)).status_code == 200


def test_alg_none_is_refused(anonymous: FlaskClient, registered: ClientKey) -> None:
    now = int(time.time())
    claims = {"iss": registered.client_id, "sub": registered.client_id, "aud": TOKEN_URL, "exp": now + 120,
              "jti": "none-1"}
    for alg in ("none", "None", "NONE"):
        unsigned = hand_made({"alg": alg, "kid": registered.key.kid, "typ": "JWT"}, claims)
        oauth_error(anonymous.post(TOKEN_PATH, data=form(unsigned)), 401, "invalid_client", "alg")


def test_hmac_signed_with_the_public_key_is_refused(app: Flask, anonymous: FlaskClient) -> None:
    client = register_client(app, scope=SCOPE, alg="RS384")
    assert isinstance(client.key, RSAKey)
    now = int(time.time())
    claims = {"iss": client.client_id, "sub": client.client_id, "aud": TOKEN_URL, "exp": now + 120}
    public_pem = client.key.as_pem(private=False)
    public_json = client.public_jwks()["keys"][0]
    for number, secret in enumerate((public_pem, public_pem.strip(), str(public_json).encode())):
        for alg in ("HS256", "HS384"):
            forged = hand_made({"alg": alg, "kid": client.key.kid, "typ": "JWT"},
                               {**claims, "jti": f"hmac-{alg}-{number}"}, secret)
            oauth_error(anonymous.post(TOKEN_PATH, data=form(forged)), 401, "invalid_client", f"alg '{alg}'")
    with pytest.raises(ValueError, match="must not be used as oct keys"):  # joserfc refuses it as a secret too
        OctKey.import_key(public_pem)


def test_a_wrong_kid_or_another_key_is_refused(app: Flask, anonymous: FlaskClient, registered: ClientKey) -> None:
    oauth_error(ask(anonymous, registered, header={"kid": "not-registered"}), 401, "invalid_client",
                "no EC key with kid 'not-registered'")
    impostor = generate_private_key("ES384", kid=registered.key.kid)  # same kid, another key
    forged = sign_assertion(registered.client_id, impostor, TOKEN_URL)
    oauth_error(anonymous.post(TOKEN_PATH, data=form(forged)), 401, "invalid_client", "signature")
    rsa = generate_private_key("RS384", kid=registered.key.kid)  # the kid of an EC key, an RSA signature
    oauth_error(anonymous.post(TOKEN_PATH, data=form(sign_assertion(registered.client_id, rsa, TOKEN_URL))), 401,
                "invalid_client", "no RSA key")
    oauth_error(ask(anonymous, registered, header={"kid": None}), 401, "invalid_client", "kid")


def test_the_audience_must_be_the_token_url(anonymous: FlaskClient, registered: ClientKey) -> None:
    for audience in (BASE, "http://localhost/fhir/auth/token/", "https://other.example.org/token", None):
        oauth_error(ask(anonymous, registered, claims={"aud": audience}), 401, "invalid_client", "aud")
    assert ask(anonymous, registered, claims={"aud": [TOKEN_URL, "https://other.example.org"]}).status_code == 200


def test_expiry_must_be_present_future_and_at_most_five_minutes_ahead(
        anonymous: FlaskClient, registered: ClientKey) -> None:
    now = time.time()
    oauth_error(ask(anonymous, registered, now=now - 400, lifetime=300), 401, "invalid_client", "expired")
    oauth_error(ask(anonymous, registered, claims={"exp": int(now) - 1}), 401, "invalid_client", "expired")
    oauth_error(ask(anonymous, registered, lifetime=600), 401, "invalid_client", "at most 300 seconds")
    oauth_error(ask(anonymous, registered, claims={"exp": None}), 401, "invalid_client", "exp is required")
    oauth_error(ask(anonymous, registered, claims={"exp": "soon"}), 401, "invalid_client", "exp")
    assert ask(anonymous, registered, lifetime=300).status_code == 200


def test_iat_and_nbf_may_not_be_in_the_future(anonymous: FlaskClient, registered: ClientKey) -> None:
    now = int(time.time())
    oauth_error(ask(anonymous, registered, claims={"iat": now + 600}), 401, "invalid_client", "iat is in the future")
    oauth_error(ask(anonymous, registered, claims={"nbf": now + 600}), 401, "invalid_client", "nbf is in the future")
    assert ask(anonymous, registered, claims={"iat": now + 20, "nbf": now + 20}).status_code == 200  # clock skew


def test_a_jti_is_accepted_once_also_by_another_process(anonymous: FlaskClient, registered: ClientKey,
                                                         other_process: Flask) -> None:
    assertion = sign_assertion(registered.client_id, registered.key, TOKEN_URL)
    assert anonymous.post(TOKEN_PATH, data=form(assertion)).status_code == 200
    oauth_error(anonymous.post(TOKEN_PATH, data=form(assertion)), 401, "invalid_client", "used before")
    elsewhere = plain_client(other_process)
    oauth_error(elsewhere.post(TOKEN_PATH, data=form(assertion)), 401, "invalid_client", "used before")
    jti = parts(assertion)[1]["jti"]
    again = sign_assertion(registered.client_id, registered.key, TOKEN_URL, claims={"jti": jti})
    oauth_error(elsewhere.post(TOKEN_PATH, data=form(again)), 401, "invalid_client", "used before")
    assert elsewhere.post(TOKEN_PATH, data=form(sign_assertion(registered.client_id, registered.key,
                                                               TOKEN_URL))).status_code == 200
    oauth_error(ask(anonymous, registered, claims={"jti": None}), 401, "invalid_client", "jti")


def test_an_unknown_client_or_iss_other_than_sub_is_refused(app: Flask, anonymous: FlaskClient,
                                                             registered: ClientKey) -> None:
    stranger = ClientKey("never-registered", generate_private_key("ES384"), "integration", "x|y", SCOPE)
    oauth_error(ask(anonymous, stranger), 401, "invalid_client", "no client 'never-registered'")
    oauth_error(ask(anonymous, registered, claims={"sub": "someone-else"}), 401, "invalid_client", "iss and sub")
    other = register_client(app, scope=SCOPE)
    body = oauth_error(ask(anonymous, registered, claims={"iss": other.client_id, "sub": other.client_id}), 401,
                       "invalid_client")  # signed by the wrong client's key
    assert "signature" in body["error_description"] or "kid" in body["error_description"]
    oauth_error(anonymous.post(TOKEN_PATH, data=form(sign_assertion(registered.client_id, registered.key, TOKEN_URL),
                                                     client_id=other.client_id)), 401, "invalid_client", "client_id")


def test_a_revoked_client_gets_no_token(app: Flask, anonymous: FlaskClient, registered: ClientKey) -> None:
    assert ask(anonymous, registered).status_code == 200
    auth_of(app).revoke_client(registered.client_id)
    oauth_error(ask(anonymous, registered), 400, "unauthorized_client", "revoked")


def test_requests_other_than_client_credentials_with_a_jwt_assertion_are_refused(
        anonymous: FlaskClient, registered: ClientKey) -> None:
    assertion = sign_assertion(registered.client_id, registered.key, TOKEN_URL)
    oauth_error(anonymous.post(TOKEN_PATH, data=form(assertion, grant_type="authorization_code")), 400,
                "unsupported_grant_type", "authorization_code")
    oauth_error(anonymous.post(TOKEN_PATH, data=form(assertion, grant_type="")), 400, "invalid_request",
                "grant_type")
    oauth_error(anonymous.post(TOKEN_PATH, data=form(assertion, client_assertion_type="urn:other")), 401,
                "invalid_client", "client_assertion_type")
    doubled = "&".join(f"{k}={v}" for k, v in form(assertion).items()) + "&scope=system/Observation.rs"
    oauth_error(anonymous.post(TOKEN_PATH, data=doubled, content_type="application/x-www-form-urlencoded"), 400,
                "invalid_request", "scope is given more than once")
    oauth_error(anonymous.post(TOKEN_PATH, json=form(assertion)), 400, "invalid_request",
                "x-www-form-urlencoded")
    refused = anonymous.get(TOKEN_PATH)
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    assert anonymous.post(TOKEN_PATH, data=form(assertion)).status_code == 200  # the same assertion, well asked


def test_a_jku_header_naming_another_key_set_is_refused_and_never_fetched(
        app: Flask, anonymous: FlaskClient, registered: ClientKey) -> None:
    attacker = generate_private_key("ES384")
    with DocumentServer({"keys": [attacker.as_dict(private=False)]}) as served:
        forged = sign_assertion(registered.client_id, attacker, TOKEN_URL, header={"jku": served.url()})
        oauth_error(anonymous.post(TOKEN_PATH, data=form(forged)), 401, "invalid_client", "jku")
        own = sign_assertion(registered.client_id, registered.key, TOKEN_URL, header={"jku": served.url()})
        oauth_error(anonymous.post(TOKEN_PATH, data=form(own)), 401, "invalid_client", "not fetched")
        for header in ({"x5u": served.url()}, {"jwk": attacker.as_dict(private=False)}):
            embedded = sign_assertion(registered.client_id, attacker, TOKEN_URL, header=header)
            oauth_error(anonymous.post(TOKEN_PATH, data=form(embedded)), 401, "invalid_client")
        time.sleep(0.2)
        assert served.requests == []
