"""Clients whose keys live at an https jwks_uri: fetched over real TLS from a test certificate authority, kept
as long as the answer's caching headers say, and never fetched from anywhere else."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from requests.structures import CaseInsensitiveDict

from server.app import create_app
from server.config import Settings
from server.security.jwks import DEFAULT_LIFETIME, cache_lifetime
from server.security.keys import generate_private_key
from server.security.tokenclient import sign_assertion
from tests.auth import ClientKey, register_client
from tests.security.servers import DocumentServer, make_authority
from tests.security.token_support import TOKEN_PATH, TOKEN_URL, form, oauth_error, plain_client


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    return make_authority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_app(settings: Settings, authority: tuple[Path, ssl.SSLContext]) -> Iterator[Flask]:
    """An app on the session database trusting the test certificate authority for jwks_uri fetches."""
    application = create_app(replace(settings, jwks_ca_bundle=str(authority[0])))
    yield application
    application.extensions["sharedcare"].services.database.dispose()


def uri_client(app: Flask, served: DocumentServer) -> ClientKey:
    key = generate_private_key("ES384")
    served.document = {"keys": [key.as_dict(private=False)]}
    return register_client(app, scope="system/Patient.rs", jwks_uri=served.url(), key=key)


def ask(client: FlaskClient, key_client: ClientKey, **signing: object):
    assertion = sign_assertion(key_client.client_id, key_client.key, TOKEN_URL, **signing)  # type: ignore[arg-type]
    return client.post(TOKEN_PATH, data=form(assertion))


def test_keys_are_fetched_over_https_and_kept_for_max_age(tls_app: Flask,
                                                          authority: tuple[Path, ssl.SSLContext]) -> None:
    with DocumentServer({}, {"Cache-Control": "public, max-age=2"}, tls=authority[1]) as served:
        client = uri_client(tls_app, served)
        anonymous = plain_client(tls_app)
        assert served.url().startswith("https://")
        assert ask(anonymous, client).status_code == 200
        assert ask(anonymous, client).status_code == 200
        assert len(served.requests) == 1  # kept
        time.sleep(2.2)
        assert ask(anonymous, client).status_code == 200
        assert len(served.requests) == 2  # fetched again once max-age passed
        assert ask(anonymous, client, header={"jku": served.url()}).status_code == 200  # the registered URL
        assert len(served.requests) == 2


def test_expires_is_honoured_and_no_store_means_every_time(tls_app: Flask,
                                                           authority: tuple[Path, ssl.SSLContext]) -> None:
    anonymous = plain_client(tls_app)
    with DocumentServer({}, {"Expires": formatdate(time.time() + 60, usegmt=True)}, tls=authority[1]) as served:
        client = uri_client(tls_app, served)
        for _ in range(3):
            assert ask(anonymous, client).status_code == 200
        assert len(served.requests) == 1
    with DocumentServer({}, {"Cache-Control": "no-store"}, tls=authority[1]) as served:
        client = uri_client(tls_app, served)
        for _ in range(3):
            assert ask(anonymous, client).status_code == 200
        assert len(served.requests) == 3


def test_a_server_the_ca_setting_does_not_vouch_for_is_not_trusted(app: Flask, tls_app: Flask,
                                                                   authority: tuple[Path, ssl.SSLContext]) -> None:
    with DocumentServer({}, {"Cache-Control": "max-age=60"}, tls=authority[1]) as served:
        client = uri_client(app, served)  # the session app trusts only the system's authorities
        oauth_error(ask(plain_client(app), client), 401, "invalid_client", "could not be fetched")
        assert ask(plain_client(tls_app), client).status_code == 200


def test_a_jku_other_than_the_registered_uri_is_refused_and_not_fetched(
        tls_app: Flask, authority: tuple[Path, ssl.SSLContext]) -> None:
    attacker = generate_private_key("ES384")
    with DocumentServer({}, {"Cache-Control": "max-age=60"}, tls=authority[1]) as registered, \
            DocumentServer({"keys": [attacker.as_dict(private=False)]}, tls=authority[1]) as elsewhere:
        client = uri_client(tls_app, registered)
        anonymous = plain_client(tls_app)
        forged = sign_assertion(client.client_id, attacker, TOKEN_URL, header={"jku": elsewhere.url()})
        oauth_error(anonymous.post(TOKEN_PATH, data=form(forged)), 401, "invalid_client", "jku")
        oauth_error(ask(anonymous, client, header={"jku": elsewhere.url("/other.json")}), 401, "invalid_client",
                    "not fetched")
        assert elsewhere.requests == [] and registered.requests == []


def test_a_key_set_served_with_private_keys_is_not_used(tls_app: Flask,
                                                        authority: tuple[Path, ssl.SSLContext]) -> None:
    with DocumentServer({}, tls=authority[1]) as served:
        client = uri_client(tls_app, served)
        served.document = {"keys": [client.key.as_dict(private=True)]}
        oauth_error(ask(plain_client(tls_app), client), 401, "invalid_client", "private key material")


def test_cache_lifetimes_from_headers() -> None:
    now = time.time()
    headers = CaseInsensitiveDict
    assert cache_lifetime(headers({"Cache-Control": "max-age=120, must-revalidate"}), now) == 120
    assert cache_lifetime(headers({"Cache-Control": "no-cache", "Expires": formatdate(now + 60)}), now) == 0
    assert cache_lifetime(headers({"Cache-Control": "max-age=9999999"}), now) == 86400
    assert 55 <= cache_lifetime(headers({"Expires": formatdate(now + 60, usegmt=True)}), now) <= 60
    assert cache_lifetime(headers({"Expires": "0"}), now) == 0
    assert cache_lifetime(headers({"Expires": formatdate(now - 60, usegmt=True)}), now) == 0
    assert cache_lifetime(headers({}), now) == DEFAULT_LIFETIME
