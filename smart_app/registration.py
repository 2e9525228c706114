"""Registering the app with an EHR's dynamic client registration (RFC 7591, as OpenEMR takes it,
source-systems.md §1.2): a confidential (`private`) client with `client_secret_basic`, the
callback as redirect URI, the launch URL, and the scopes the app asks for. OpenEMR 8.2 omits
`registration_endpoint` from its SMART configuration, so the OIDC discovery document next to its
authorize endpoint is read when needed. An admin then enables the client (Administration ->
System -> API Clients) before it can be launched.
"""

from __future__ import annotations

from typing import Any

import httpx

from smart_app.config import STANDALONE_EXTRA


class RegistrationFailed(RuntimeError):
    """Registration was refused or the endpoint could not be found; the message says why."""


def registration_endpoint(http: httpx.Client, iss: str) -> str:
    smart = http.get(iss.rstrip("/") + "/.well-known/smart-configuration")
    if smart.status_code != 200:
        raise RegistrationFailed(f"{iss}: no SMART configuration ({smart.status_code})")
    config = smart.json()
    if config.get("registration_endpoint"):
        return str(config["registration_endpoint"])
    authorize = str(config.get("authorization_endpoint", ""))
    oauth_base = authorize.rsplit("/", 1)[0]
    oidc = http.get(f"{oauth_base}/.well-known/openid-configuration")
    if oidc.status_code == 200 and oidc.json().get("registration_endpoint"):
        return str(oidc.json()["registration_endpoint"])
    raise RegistrationFailed(f"{iss}: the EHR advertises no registration endpoint")


def metadata(app_base: str, scopes: str, client_name: str) -> dict[str, Any]:
    base = app_base.rstrip("/")
    wanted = [*scopes.split(), STANDALONE_EXTRA]
    return {
        "application_type": "private",
        "client_name": client_name,
        "redirect_uris": [f"{base}/smart/callback"],
        "launch_uris": [f"{base}/smart/launch"],
        "initiate_login_uri": f"{base}/smart/standalone",
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": " ".join(dict.fromkeys(wanted)),
    }


def register(
    iss: str, app_base: str, scopes: str, *, client_name: str = "cdss SMART app"
) -> dict[str, Any]:
    """Register and return the EHR's answer (client_id, client_secret, ...)."""
    with httpx.Client(timeout=20) as http:
        endpoint = registration_endpoint(http, iss)
        answer = http.post(endpoint, json=metadata(app_base, scopes, client_name))
    body = answer.json() if answer.content else {}
    if answer.status_code not in (200, 201) or not isinstance(body, dict):
        detail = (
            body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
        )
        raise RegistrationFailed(
            f"the EHR refused the registration ({answer.status_code}): {detail}"
        )
    return body
