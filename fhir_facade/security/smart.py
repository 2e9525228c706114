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
