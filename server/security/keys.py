"""The server's own key for signing access tokens: made on first use, kept in the database, published as a JWKS."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from joserfc.jwk import ECKey, RSAKey, import_key
from sqlalchemy import select

from ..store.db import Database, advisory_lock, transaction
from ..store.schema import signing_keys
from .jwks import ALGORITHMS, KEY_TYPE, PublicKey

SIGNING_LOCK = 0x5348_4152_4B45_5953  # advisory lock key serialising the creation of the first key
RELOAD_AFTER = 1.0  # an unknown kid reloads the keys from the database at most this often


def generate_private_key(alg: str = "ES384", kid: str | None = None) -> RSAKey | ECKey:
    """A new private signing key for `alg` (ES384: EC P-384; RS384: RSA 3072 bits), with kid and alg set."""
    if alg not in ALGORITHMS:
        raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}")
    parameters: Any = {"alg": alg, "use": "sig", "kid": kid or uuid.uuid4().hex}
    if KEY_TYPE[alg] == "EC":
        return ECKey.generate_key("P-384", parameters)
    return RSAKey.generate_key(3072, parameters)


def private_key_from(document: dict[str, Any] | str) -> RSAKey | ECKey:
    """A private RSA or EC key from its JWK (a dict or JSON text)."""
    data = json.loads(document) if isinstance(document, str) else document
    if data.get("kty") not in ("RSA", "EC") or "d" not in data:
        raise ValueError("not a private RSA or EC JWK")
    key = import_key(data, data["kty"])
    return key  # type: ignore[return-value]


def algorithm_of(key: RSAKey | ECKey) -> str:
    return str(key.get("alg") or ("ES384" if key.key_type == "EC" else "RS384"))


class SigningKeys:
    """The access-token signing keys of the `signing_keys` table. The oldest signs; every one verifies.

    The first use creates a key when there is none, under a lock (PostgreSQL advisory lock; SQLite's write
    lock), so processes racing at start-up all end up signing with the same key."""

    def __init__(self, database: Database, alg: str = "ES384") -> None:
        self.database = database
        self.alg = alg
        self.signing: RSAKey | ECKey | None = None
        self.verifying: dict[str, PublicKey] = {}
        self.loaded = 0.0
        self.lock = threading.Lock()

    def current(self) -> RSAKey | ECKey:
        """The private key to sign with."""
        if self.signing is None:
            with self.lock:
                if self.signing is None:
                    self.load(create=True)
        assert self.signing is not None
        return self.signing

    def verification_key(self, kid: str) -> PublicKey | None:
        """The public key with this kid, reloading from the database (at most once a second) when unknown."""
        found = self.verifying.get(kid)
        if found is None and time.monotonic() - self.loaded >= RELOAD_AFTER:
            with self.lock:
                self.load(create=False)
            found = self.verifying.get(kid)
        return found

    def public_jwks(self) -> dict[str, Any]:
        self.current()
        return {"keys": [key.as_dict(private=False) for key in self.verifying.values()]}

    def load(self, create: bool) -> None:
        rows = self.rows()
        if not rows and create:
            rows = self.create()
        keys = [private_key_from(row.private_jwk) for row in rows]
        self.verifying = {str(key.kid): public_of(key) for key in keys}
        if keys:
            self.signing = keys[0]
        self.loaded = time.monotonic()

    def rows(self) -> list[Any]:
        with transaction(self.database, writing=False) as connection:
            return list(connection.execute(
                select(signing_keys).order_by(signing_keys.c.created, signing_keys.c.kid)).all())

    def create(self) -> list[Any]:
        with transaction(self.database, writing=True) as connection:
            advisory_lock(connection, SIGNING_LOCK)
            rows = list(connection.execute(
                select(signing_keys).order_by(signing_keys.c.created, signing_keys.c.kid)).all())
            if rows:
                return rows  # another process made it while this one waited
            key = generate_private_key(self.alg)
            connection.execute(signing_keys.insert().values(
                kid=key.kid, private_jwk=json.dumps(key.as_dict(private=True)), created=int(time.time())))
        return self.rows()


def public_of(key: RSAKey | ECKey) -> PublicKey:
    """The public half of a private key, keeping its kid, alg and use."""
    return import_key(key.as_dict(private=False), key.key_type)  # type: ignore[return-value]
