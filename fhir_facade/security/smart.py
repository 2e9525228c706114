"""`[base]/.well-known/smart-configuration` (SMART App Launch 2.0 §2.1): where apps get tokens
for this facade. The authorization server is the first configured issuer that names its
authorization and token endpoints (the OpenEMR simulator in the demo)."""

from __future__ import annotations

from typing import Any

from fhir_facade.security.settings import SecuritySettings

CAPABILITIES = (
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
)
SCOPES = (
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "patient/*.rs",
    "user/*.rs",
    "system/*.rs",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
)


def smart_configuration(settings: SecuritySettings) -> dict[str, Any] | None:
    issuer = next(
        (i for i in settings.issuers if i.authorization_endpoint and i.token_endpoint), None
    )
    if issuer is None:
        return None
    doc: dict[str, Any] = {
        "issuer": issuer.issuer,
        "authorization_endpoint": str(issuer.authorization_endpoint),
        "token_endpoint": str(issuer.token_endpoint),
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "scopes_supported": [*SCOPES, settings.admin_scope],
        "response_types_supported": ["code"],
        "capabilities": list(CAPABILITIES),
        "code_challenge_methods_supported": ["S256"],
    }
    if issuer.jwks_uri:
        doc["jwks_uri"] = str(issuer.jwks_uri)
    if issuer.introspection_endpoint:
        doc["introspection_endpoint"] = str(issuer.introspection_endpoint)
    return doc


OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def security_statement(capability: dict[str, Any], smart: dict[str, Any]) -> dict[str, Any]:
    """CapabilityStatement.rest.security as SMART App Launch asks: the SMART-on-FHIR service
    and the oauth-uris extension naming the authorization and token endpoints."""
    uris = [
        {"url": name, "valueUri": smart[key]}
        for name, key in (("authorize", "authorization_endpoint"), ("token", "token_endpoint"))
        if smart.get(key)
    ]
    for rest in capability.get("rest") or []:
        rest["security"] = {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "extension": [{"url": OAUTH_URIS, "extension": uris}],
            "description": "SMART App Launch bearer tokens; see .well-known/smart-configuration",
        }
    return capability
