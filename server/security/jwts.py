"""Reading compact JWS tokens safely: size first, then header and claims unverified, then the signature by one key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry, extract_compact

from .jwks import ALGORITHMS, PublicKey

REFUSED_HEADERS = ("crit", "b64", "jwk", "x5u", "x5c")  # keys named in the token itself are never trusted


class TokenFormatError(ValueError):
    """A token that is not a usable compact JWS (its reason is safe to tell the client)."""


@dataclass(frozen=True)
class Unverified:
    """A compact JWS read but not yet verified: its header and claims."""

    text: str
    header: dict[str, Any]
    claims: dict[str, Any]


def read(text: str, max_bytes: int, what: str = "the token") -> Unverified:
    """Header and claims of a compact JWS of at most `max_bytes`, signed with an accepted algorithm."""
    if len(text) > max_bytes:
        raise TokenFormatError(f"{what} is larger than {max_bytes} bytes")
    if text.count(".") != 2:
        raise TokenFormatError(f"{what} is not a compact JWS (header.payload.signature)")
    try:
        extracted = extract_compact(text.encode("ascii"))
        claims = orjson.loads(extracted.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise TokenFormatError(f"{what} cannot be decoded") from exc
    header = extracted.headers()
    if not isinstance(claims, dict):
        raise TokenFormatError(f"{what} holds no JSON object of claims")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenFormatError(f"{what} is signed with alg {alg!r}; accepted: {', '.join(ALGORITHMS)}")
    refused = [name for name in REFUSED_HEADERS if name in header]
    if refused:
        raise TokenFormatError(f"{what} carries header parameters this server does not accept: {', '.join(refused)}")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise TokenFormatError(f"{what} names no key (kid header)")
    return Unverified(text, header, claims)


def verify(token: Unverified, key: PublicKey) -> None:
    """Check the signature with this one key, allowing only the token's own (accepted) algorithm for the
    key's type, so no key can serve another algorithm (a public key never as an HMAC secret)."""
    alg = token.header["alg"]
    try:
        jwt.decode(token.text, key, algorithms=[alg], registry=JWSRegistry(algorithms=[alg]))
    except (JoseError, ValueError) as exc:
        raise TokenFormatError("the signature does not verify") from exc


def number(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim, None when absent; TokenFormatError when not a number."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenFormatError(f"claim {name} must be a number of seconds since the epoch")
    return float(value)


def text_claim(claims: dict[str, Any], name: str, max_length: int = 255) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise TokenFormatError(f"claim {name} must be a non-empty string of at most {max_length} characters")
    return value
