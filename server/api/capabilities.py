"""The CapabilityStatement, generated from what the router, registry and operations really implement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:
    from .app import FhirApi

TYPE_INTERACTIONS = {
    "read": ("GET", ":type/:id"),
    "vread": ("GET", ":type/:id/_history/:vid"),
    "update": ("PUT", ":type/:id"),
    "patch": ("PATCH", ":type/:id"),
    "delete": ("DELETE", ":type/:id"),
    "history-instance": ("GET", ":type/:id/_history"),
    "history-type": ("GET", ":type/_history"),
    "create": ("POST", ":type"),
    "search-type": ("GET", ":type"),
}
SYSTEM_INTERACTIONS = {
    "transaction": ("POST", ""),
    "batch": ("POST", ""),
    "search-system": ("GET", ""),
    "history-system": ("GET", "_history"),
}
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/"
TOPIC_CANONICAL = BACKPORT + "StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
SUBSCRIPTION_SERVER = BACKPORT + "CapabilityStatement/backport-subscription-server-r4"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
MODIFIERS = {
    "string": "exact, contains",
    "token": "not, text, in, not-in, of-type",
    "reference": "[type], identifier, chained",
    "uri": "below, above",
}


def implemented(api: FhirApi) -> set[tuple[str, str]]:
    return {(r.method, "/".join(r.pattern)) for r in api.router.routes}


def capability_statement(api: FhirApi, base_url: str) -> dict[str, Any]:
    routes = implemented(api)
    services = api.services
    interactions = [{"code": code} for code, key in TYPE_INTERACTIONS.items() if key in routes]
    resources = []
    for type_name in sorted(services.types.supported):
        params = services.registry.params(type_name)
        search_params = [
            {"name": code, "type": param.type, **({"definition": param.url} if param.url else {}),
             **({"documentation": f"Modifiers: missing, {MODIFIERS[param.type]}"} if param.type in MODIFIERS else {})}
            for code, param in sorted(params.items())
        ]
        search_params.append({"name": "_id", "type": "token"})
        search_params.append({"name": "_lastUpdated", "type": "date"})
        reference_codes = sorted(code for code, p in params.items() if p.type == "reference")
        entry: dict[str, Any] = {
            "type": type_name,
            "interaction": interactions,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "multiple",
            "referencePolicy": ["literal", "logical"],
            "searchInclude": ["*", *[f"{type_name}:{code}" for code in reference_codes]],
            "searchRevInclude": ["*"],
            "searchParam": search_params,
        }
        supported_profiles = services.profiles.supported(type_name)
        if supported_profiles:
            entry["supportedProfile"] = supported_profiles
        operations = operations_for(api, type_name)
        if operations:
            entry["operation"] = operations
        if type_name == "Subscription" and services.topics is not None:
            entry["extension"] = [{"url": TOPIC_CANONICAL, "valueCanonical": url}
                                  for url in sorted(services.topics.topics)]
        resources.append(entry)
    system_ops = [
        {"name": op.name, "definition": op.definition or f"{base_url}/OperationDefinition/{op.name}"}
        for ops in api.router.operations.values() for op in ops if "system" in op.levels
    ]
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "Shared care record: FHIR R4 REST API over JSON",
        "resource": resources,
        "interaction": [{"code": code} for code, key in SYSTEM_INTERACTIONS.items() if key in routes],
        "searchParam": [{"name": "_type", "type": "token"}, {"name": "_id", "type": "token"},
                        {"name": "_lastUpdated", "type": "date"}],
    }
    if system_ops:
        rest["operation"] = system_ops
    rest["security"] = security(base_url)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Shared care record project",
        "kind": "instance",
        "software": {"name": "sharedcare", "version": __version__},
        "implementation": {"description": "Shared care record server", "url": base_url},
        "instantiates": [SUBSCRIPTION_SERVER],
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [rest],
    }


def security(base_url: str) -> dict[str, Any]:
    """SMART on FHIR (Backend Services): where to get and revoke tokens (also in .well-known/smart-configuration)."""
    return {
        "extension": [{
            "url": OAUTH_URIS,
            "extension": [{"url": "token", "valueUri": f"{base_url}/auth/token"},
                          {"url": "revoke", "valueUri": f"{base_url}/auth/revoke"}],
        }],
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                     "text": "SMART Backend Services: OAuth 2.0 client credentials with private_key_jwt"}],
        "description": "Every interaction but this CapabilityStatement needs an access token from the token "
                       f"endpoint ({base_url}/.well-known/smart-configuration) as Authorization: Bearer.",
    }


def operations_for(api: FhirApi, type_name: str) -> list[dict[str, str]]:
    found = []
    for name, ops in sorted(api.router.operations.items()):
        for op in ops:
            if ("type" in op.levels or "instance" in op.levels) and (not op.types or type_name in op.types):
                found.append({"name": name, "definition": op.definition or f"OperationDefinition/{name}"})
                break
    return found
