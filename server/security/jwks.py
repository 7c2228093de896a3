"""Clients' JSON Web Key Sets: public keys by value, or fetched over https from a jwks_uri and cached as HTTP allows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from joserfc.jwk import ECKey, RSAKey, import_key

ALGORITHMS = ("RS384", "ES384")
KEY_TYPE = {"RS384": "RSA", "ES384": "EC"}
EC_CURVE = "P-384"
MIN_RSA_BITS = 2048
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_JWKS_BYTES = 64 * 1024
DEFAULT_LIFETIME = 300.0  # seconds a fetched set is kept when the answer says nothing about caching
MAX_LIFETIME = 86400.0
REFETCH_AFTER = 30.0  # a key id missing from a cached set fetches it again, at most this often

PublicKey = RSAKey | ECKey


class JwksError(ValueError):
    """A key set that cannot be used: malformed, holding private or unsuitable keys, or not fetchable."""


def public_keys(document: Any, where: str = "the JWKS") -> list[PublicKey]:
    """The keys of a public JWK Set; refuses private members, symmetric and unsuitable keys, and
    keys without a unique `kid`."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise JwksError(f"{where} is not JSON: {exc}") from exc
    if isinstance(document, dict) and PRIVATE_MEMBERS & document.keys():
        raise JwksError(f"{where} holds private key material: register the public JWKS only")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise JwksError(f'{where} is not a JWK Set ({{"keys": [...]}}) holding at least one key')
    keys: list[PublicKey] = []
    seen: set[tuple[str, str]] = set()
    for number, member in enumerate(document["keys"]):
        label = f"{where}, key {number}"
        if not isinstance(member, dict):
            raise JwksError(f"{label} is not a JSON object")
        private = sorted(PRIVATE_MEMBERS & member.keys())
        if private:
            raise JwksError(f"{label} holds private key material ({', '.join(private)}): register public keys only")
        key = public_key(member, label)
        identity = (key.key_type, str(member["kid"]))
        if identity in seen:
            raise JwksError(f"{label}: kid {member['kid']!r} is used by another {key.key_type} key of the set")
        seen.add(identity)
        keys.append(key)
    return keys


def public_key(member: dict[str, Any], label: str) -> PublicKey:
    """One RSA (at least 2048 bits) or EC P-384 public key with a kid, usable for signatures."""
    kty = member.get("kty")
    if kty not in ("RSA", "EC"):
        raise JwksError(f"{label} has kty {kty!r}: only RSA and EC public keys are accepted")
    if not isinstance(member.get("kid"), str) or not member["kid"]:
        raise JwksError(f"{label} has no kid")
    if member.get("use", "sig") != "sig":
        raise JwksError(f"{label} is not a signature key (use {member.get('use')!r})")
    if member.get("alg") not in (None, *ALGORITHMS):
        raise JwksError(f"{label} names alg {member.get('alg')!r}: only {', '.join(ALGORITHMS)} are accepted")
    try:
        key: PublicKey = import_key(member, kty)  # type: ignore[assignment]
    except Exception as exc:  # joserfc raises several kinds for malformed members
        raise JwksError(f"{label} is not a valid {kty} key: {exc}") from exc
    if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
        raise JwksError(f"{label}: RSA keys must have at least {MIN_RSA_BITS} bits")
    if isinstance(key, ECKey) and member.get("crv") != EC_CURVE:
        raise JwksError(f"{label}: EC keys must be on {EC_CURVE} (ES384)")
    return key


def key_for(keys: list[PublicKey], kid: str, alg: str) -> PublicKey | None:
    """The key a signature names: the same kid, of the algorithm's key type (and alg, when the key says)."""
    kty = KEY_TYPE.get(alg)
    for key in keys:
        if key.kid == kid and key.key_type == kty and key.get("alg") in (None, alg):
            return key
    return None


def check_jwks_uri(uri: str) -> str:
    """An https URL with a host and no credentials or fragment; raises JwksError otherwise."""
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password or parts.fragment:
        raise JwksError(f"jwks_uri {uri!r} must be an https URL with a host (no credentials, no fragment)")
    return uri


def cache_lifetime(headers: Any, now: float) -> float:
    """Seconds a response may be kept: Cache-Control max-age (no-store, no-cache: none), else Expires
    (against the response's Date), else DEFAULT_LIFETIME; at most MAX_LIFETIME."""
    directives = {}
    for part in (headers.get("Cache-Control") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    if "max-age" in directives:
        try:
            return max(0.0, min(float(int(directives["max-age"])), MAX_LIFETIME))
        except ValueError:
            return 0.0
    expires = headers.get("Expires")
    if expires is not None:
        try:
            until = parsedate_to_datetime(expires).timestamp()
            date = headers.get("Date")
            base = parsedate_to_datetime(date).timestamp() if date else now
        except (TypeError, ValueError, IndexError):
            return 0.0  # an invalid Expires means already expired (RFC 9111 5.3)
        return max(0.0, min(until - base, MAX_LIFETIME))
    return DEFAULT_LIFETIME


@dataclass
class Fetched:
    keys: list[PublicKey]
    fetched: float
    fresh_until: float


class JwksFetcher:
    """Fetches clients' key sets from their registered https jwks_uri, keeping each as long as the answer's
    caching headers allow (per process). `ca_bundle` names the certificate authorities to trust (empty:
    the system's); redirects are not followed and answers over 64 kB are refused."""

    def __init__(self, ca_bundle: str = "", timeout: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.verify: str | bool = ca_bundle or True
        self.timeout = timeout
        self.clock = clock
        self.cache: dict[str, Fetched] = {}
        self.lock = threading.Lock()

    def keys(self, uri: str, kid: str | None = None) -> list[PublicKey]:
        """The keys at `uri`, from the cache while fresh; fetched again when stale, or when `kid` is not
        among them and the copy is older than REFETCH_AFTER (the client may have rotated its keys)."""
        now = self.clock()
        found = self.cache.get(uri)
        if found is not None and now < found.fresh_until and (
                kid is None or any(key.kid == kid for key in found.keys) or now - found.fetched < REFETCH_AFTER):
            return found.keys
        with self.lock:  # one fetch per process at a time; a waiting thread uses what it fetched
            found = self.cache.get(uri)
            if found is not None and found.fetched >= now:
                return found.keys
            fetched = self.fetch(uri)
            self.cache[uri] = fetched
            return fetched.keys

    def fetch(self, uri: str) -> Fetched:
        check_jwks_uri(uri)
        try:
            with requests.get(uri, timeout=self.timeout, verify=self.verify, allow_redirects=False, stream=True,
                              headers={"Accept": "application/jwk-set+json, application/json"}) as response:
                if response.status_code != 200:
                    raise JwksError(f"jwks_uri {uri} answered {response.status_code}")
                body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
                headers = response.headers
        except requests.RequestException as exc:
            raise JwksError(f"jwks_uri {uri} could not be fetched: {type(exc).__name__}") from exc
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError(f"jwks_uri {uri} answered more than {MAX_JWKS_BYTES} bytes")
        keys = public_keys(body, f"the JWKS at {uri}")
        now = self.clock()
        return Fetched(keys, now, now + cache_lifetime(headers, now))
