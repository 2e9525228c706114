"""The two discovery documents, key for key as OpenEMR 8.2.0-dev emits them (§1.5).

Quirks kept on purpose, because clients written against the simulator must survive the real
server: SMART's `scopes_supported` is a list wrapped in another list, it has no
registration/revocation/management endpoint and advertises only S256; the OIDC document says
`require_request_uri_registration: ["false"]` (an array holding a string) and lists only
`client_secret_post` as token auth method although /token accepts more.
"""

from __future__ import annotations

from typing import Any

from simulators.openemr.oauth.context import Urls
from simulators.openemr.oauth.scope_lists import CLAIMS_SUPPORTED, SMART_SCOPES

CAPABILITIES = (
    "launch-ehr",
    "launch-standalone",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "client-public",
    "context-banner",
    "context-ehr-patient",
    "context-style",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-user",
    "permission-patient",
    "permission-offline",
    "permission-v1",
    "permission-v2",
    "authorize-post",
    "context-ehr-encounter",
)

RESPONSE_TYPES = (
    "code",
    "token",
    "id_token",
    "code token",
    "code id_token",
    "token id_token",
    "code token id_token",
)


def smart_configuration(urls: Urls) -> dict[str, Any]:
    """GET {fhir base}/.well-known/smart-configuration (SMARTConfigurationController)."""
    return {
        "issuer": urls.fhir_base,
        "jwks_uri": urls.oauth("jwk"),
        "authorization_endpoint": urls.oauth("authorize"),
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "token_endpoint": urls.token,
        "capabilities": list(CAPABILITIES),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": [list(SMART_SCOPES)],
        "introspection_endpoint": urls.oauth("introspect"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "response_types_supported": list(RESPONSE_TYPES),
    }


def openid_configuration(urls: Urls, *, password_grant: bool) -> dict[str, Any]:
    """GET {oauth base}/.well-known/openid-configuration (OAuth2DiscoveryController)."""
    grants = ["authorization_code", *(["password"] if password_grant else []), "refresh_token"]
    return {
        "issuer": urls.oauth_base,
        "authorization_endpoint": urls.oauth("authorize"),
        "token_endpoint": urls.token,
        "jwks_uri": urls.oauth("jwk"),
        "userinfo_endpoint": urls.oauth("userinfo"),
        "registration_endpoint": urls.oauth("registration"),
        "end_session_endpoint": urls.oauth("logout"),
        "introspection_endpoint": urls.oauth("introspect"),
        "scopes_supported": list(SMART_SCOPES),
        "response_types_supported": list(RESPONSE_TYPES),
        "code_challenge_methods_supported": ["S256", "plain"],
        "grant_types_supported": grants,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "require_request_uri_registration": ["false"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384"],
        "claims_locales_supported": ["en-US"],
        "ui_locales_supported": ["en-US"],
    }


SMART_STYLE = {
    "color_background": "#edeae3",
    "color_error": "#9e2d2d",
    "color_highlight": "#69b5ce",
    "color_modal_backdrop": "",
    "color_success": "#498e49",
    "color_text": "#303030",
    "dim_border_radius": "6px",
    "dim_font_size": "13px",
    "dim_spacing_size": "20px",
    "font_family_body": "Georgia, Times, 'Times New Roman', serif",
    "font_family_heading": "'HelveticaNeue-Light', Helvetica, Arial, 'Lucida Grande', sans-serif",
}
"""The style document behind `smart_style_url` (SMART's example; OpenEMR ships a light one)."""
