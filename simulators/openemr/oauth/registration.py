"""Dynamic client registration with OpenEMR's rules (AuthorizationController::clientRegistration).

The rules, in OpenEMR's order (source-systems.md §1.2): `application_type: "private"` makes a
confidential client with a secret and role `user`, anything else a public `patient` client
without one (PKCE then required); private clients asking for `system/` scopes must send `jwks`
or `jwks_uri`; public clients may not ask for `user/` or `system/` scopes; every scope must be a
server scope (`invalid_scope`); enumerated keys must hold supported values; `redirect_uris` is
required even for backend services. The answer is 200 (not RFC 7591's 201) and echoes the
metadata, arrays as arrays, after the generated credentials.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from simulators.openemr.oauth.models import Client
from simulators.openemr.oauth.scope_lists import SUPPORTED_SCOPES

ECHOED_KEYS = (
    "contacts",
    "application_type",
    "client_name",
    "logo_uri",
    "redirect_uris",
    "post_logout_redirect_uris",
    "token_endpoint_auth_method",
    "policy_uri",
    "tos_uri",
    "jwks_uri",
    "jwks",
    "sector_identifier_uri",
    "subject_type",
    "default_max_age",
    "require_auth_time",
    "default_acr_values",
    "initiate_login_uri",
    "request_uris",
    "response_types",
    "grant_types",
    "scope",
    "dsi_type",
    "dsi_source_attributes",
)
ARRAY_KEYS = frozenset(
    {
        "contacts",
        "redirect_uris",
        "request_uris",
        "post_logout_redirect_uris",
        "grant_types",
        "response_types",
        "default_acr_values",
    }
)
ENUMERATED = {
    "token_endpoint_auth_method": ("client_secret_basic", "client_secret_post", "private_key_jwt"),
    "subject_type": ("pairwise", "public"),
    "dsi_type": ("none", "evidence", "predictive"),
}


class RegistrationError(ValueError):
    """A refused registration, carrying the OAuth error code OpenEMR answers with."""

    def __init__(self, error: str, description: str, hint: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.hint = hint

    def body(self) -> dict[str, str]:
        body = {"error": self.error, "error_description": self.description}
        if self.hint:
            body["hint"] = self.hint
        return body


def register(
    metadata: Mapping[str, Any], *, oauth_base: str, now: int
) -> tuple[Client, dict[str, Any]]:
    """Validate `metadata` as OpenEMR does; the new client and the registration response."""
    if not isinstance(metadata, Mapping) or not metadata:
        raise RegistrationError("invalid_client_metadata", "Invalid JSON")
    scope = metadata.get("scope")
    scope = scope if isinstance(scope, str) else ""
    private = metadata.get("application_type") == "private"
    if private and "system/" in scope and not ("jwks" in metadata or "jwks_uri" in metadata):
        raise RegistrationError("invalid_client_metadata", "jwks is invalid")
    if not private and ("system/" in scope or "user/" in scope):
        raise RegistrationError(
            "invalid_client_metadata",
            "system and user scopes are only allowed for confidential clients",
        )
    _check_scopes(scope)
    echoed = _echo(metadata)
    redirect_uris = echoed.get("redirect_uris")
    if not redirect_uris:
        raise RegistrationError("invalid_redirect_uri", "redirect_uris is invalid")

    client = Client(
        client_id=_token(32),
        client_secret=_token(64) if private else None,
        scopes=tuple(scope.split()),
        redirect_uris=tuple(redirect_uris),
        token_endpoint_auth_method=echoed.get("token_endpoint_auth_method"),
        jwks=echoed.get("jwks"),
        jwks_uri=echoed.get("jwks_uri"),
        role="user" if private else "patient",
        registration_access_token=_token(32),
        registration_path=_token(16),
        issued_at=now,
        metadata=echoed,
        launch_uri=_launch_uri(metadata.get("launch_uris")),
    )
    return client, registration_response(client, oauth_base=oauth_base)


def registration_response(client: Client, *, oauth_base: str) -> dict[str, Any]:
    """The registration answer: credentials first, then role and the echoed metadata."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_secret": client.client_secret or "",
        "registration_access_token": client.registration_access_token,
        "registration_client_uri": f"{oauth_base}/client/{client.registration_path}",
        "client_id_issued_at": client.issued_at,
        "client_secret_expires_at": 0,
        "client_role": client.role,
    }
    body.update(client.metadata)
    body.setdefault("dsi_type", "none")
    return body


def _check_scopes(scope: str) -> None:
    requested = scope.split()
    if not requested:
        raise RegistrationError(
            "invalid_scope", "The requested scope is invalid, unknown, or malformed"
        )
    for item in requested:
        if item not in SUPPORTED_SCOPES:
            raise RegistrationError(
                "invalid_scope",
                "The requested scope is invalid, unknown, or malformed",
                f"Check the `{item}` scope",
            )


def _echo(metadata: Mapping[str, Any]) -> dict[str, Any]:
    echoed: dict[str, Any] = {}
    for key in ECHOED_KEYS:
        if key not in metadata:
            continue
        value = metadata[key]
        if key in ARRAY_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RegistrationError("invalid_client_metadata", f"{key} must be an array")
        elif key == "jwks" and not _is_jwks(value):
            raise RegistrationError("invalid_client_metadata", "jwks is invalid")
        elif key == "require_auth_time":
            value = value in (1, True)
        allowed = ENUMERATED.get(key)
        if allowed is not None and value not in allowed:
            raise RegistrationError("invalid_client_metadata", f"Unsupported {key} value : {value}")
        echoed[key] = value
    return echoed


def _launch_uri(value: Any) -> str | None:
    """SMART `launch_uris` (OpenEMR keeps one launch URI per client; not echoed back)."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None


def _token(nbytes: int) -> str:
    return secrets.token_urlsafe(nbytes)


def _is_jwks(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("keys"), list)
