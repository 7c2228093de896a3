"""SMART discovery: the .well-known/smart-configuration document of a FHIR base URL."""

from __future__ import annotations

from typing import Any

from .access_tokens import TOKEN_PATH
from .jwks import ALGORITHMS

CONFIGURATION_PATH = ".well-known/smart-configuration"
REVOKE_PATH = "auth/revoke"
JWKS_PATH = "auth/jwks"
SCOPES_SUPPORTED = ("system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", "system/*.*")
CAPABILITIES = ("client-confidential-asymmetric", "permission-v2", "permission-v1")


def endpoint(fhir_base: str, path: str) -> str:
    return f"{fhir_base.rstrip('/')}/{path}"


def smart_configuration(fhir_base: str) -> dict[str, Any]:
    """What a SMART Backend Services client needs to know to get a token from this server."""
    return {
        "token_endpoint": endpoint(fhir_base, TOKEN_PATH),
        "revocation_endpoint": endpoint(fhir_base, REVOKE_PATH),
        "jwks_uri": endpoint(fhir_base, JWKS_PATH),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": list(CAPABILITIES),
    }
