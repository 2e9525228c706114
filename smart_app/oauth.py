"""The SMART client side of OAuth: discovery, the authorize URL, token exchange and refresh.

SMART App Launch 2.2: discovery at `{iss}/.well-known/smart-configuration` (JSON whatever the
Accept); PKCE S256 for every client and the server must advertise it; `state` of >= 122 bits
bound to the browser session; `aud` = iss; confidential clients authenticate at the token
endpoint with HTTP Basic. Scopes follow the syntax the server advertises (v2 `.rs` when it lists
`permission-v2`, else v1 `.read`). Granted scopes are read back from the token response.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from smart_app.sessions import Tokens


class LaunchError(Exception):
    """The launch cannot go on; the message is shown to the user (never a token)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class SmartConfig:
    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]
    registration_endpoint: str | None
    jwks_uri: str | None = None

    @property
    def v2(self) -> bool:
        return "permission-v2" in self.capabilities or "permission-v1" not in self.capabilities


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def v1_scopes(scopes: str) -> str:
    """`user/X.rs` -> `user/X.read` for servers that advertise only v1 permissions."""
    out = []
    for scope in scopes.split():
        head, dot, perms = scope.rpartition(".")
        out.append(f"{head}.read" if dot and "/" in head and perms == "rs" else scope)
    return " ".join(out)


async def discover(http: httpx.AsyncClient, iss: str) -> SmartConfig:
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise LaunchError(f"The EHR's SMART configuration could not be read: {exc}", 502) from None
    if response.status_code != 200:
        raise LaunchError(f"The EHR's SMART configuration answered {response.status_code}", 502)
    body = response.json()
    if not isinstance(body, dict):
        raise LaunchError("The EHR's SMART configuration is not a JSON object", 502)
    methods = body.get("code_challenge_methods_supported") or []
    if "S256" not in methods:
        raise LaunchError("The EHR does not support PKCE S256, which SMART 2.x requires", 502)
    try:
        return SmartConfig(
            authorization_endpoint=str(body["authorization_endpoint"]),
            token_endpoint=str(body["token_endpoint"]),
            capabilities=frozenset(str(c) for c in body.get("capabilities") or []),
            registration_endpoint=body.get("registration_endpoint"),
            jwks_uri=body.get("jwks_uri"),
        )
    except KeyError as exc:
        raise LaunchError(f"The EHR's SMART configuration lacks {exc.args[0]}", 502) from None


def authorize_url(
    config: SmartConfig,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    challenge: str,
    aud: str,
    launch: str | None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope if config.v2 else v1_scopes(scope),
        "state": state,
        "aud": aud,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if launch:
        params["launch"] = launch
    sep = "&" if "?" in config.authorization_endpoint else "?"
    return config.authorization_endpoint + sep + urlencode(params)


def _tokens(body: dict[str, Any], previous_refresh: str | None = None) -> Tokens:
    if str(body.get("token_type", "")).lower() != "bearer" or not body.get("access_token"):
        raise LaunchError("The EHR's token response has no bearer access token", 502)
    return Tokens(
        access_token=str(body["access_token"]),
        expires_at=time.time() + float(body.get("expires_in") or 300),
        refresh_token=body.get("refresh_token") or previous_refresh,
        scope=str(body.get("scope", "")),
        id_token=body.get("id_token"),
    )


async def _token_call(
    http: httpx.AsyncClient, endpoint: str, form: dict[str, str], auth: tuple[str, str]
) -> dict[str, Any]:
    try:
        response = await http.post(endpoint, data=form, auth=auth)
    except httpx.HTTPError as exc:
        raise LaunchError(f"The EHR's token endpoint could not be reached: {exc}", 502) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise LaunchError(f"The EHR refused the token request ({response.status_code} {error})")
    return body


async def exchange_code(
    http: httpx.AsyncClient,
    endpoint: str,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
    auth: tuple[str, str],
) -> tuple[Tokens, dict[str, Any]]:
    """Tokens and the launch context (patient, encounter, fhirContext, appContext...)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    body = await _token_call(http, endpoint, form, auth)
    return _tokens(body), body


async def refresh(
    http: httpx.AsyncClient, endpoint: str, tokens: Tokens, auth: tuple[str, str]
) -> Tokens:
    if not tokens.refresh_token:
        raise LaunchError("The session expired; launch the app again from the EHR", 401)
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    body = await _token_call(http, endpoint, form, auth)
    return _tokens(body, tokens.refresh_token)


async def verify_id_token(
    http: httpx.AsyncClient, jwks_uri: str | None, id_token: str, client_id: str
) -> dict[str, Any]:
    """The id_token's claims once its signature (EHR's JWKS, RS256/RS384) and `aud` check out
    (OIDC Core 3.1.3.7); a LaunchError otherwise."""
    if not jwks_uri:
        raise LaunchError("The EHR advertises no jwks_uri to verify its id_token", 502)
    try:
        keys = KeySet.import_key_set((await http.get(jwks_uri)).raise_for_status().json())
        token = jwt.decode(id_token, keys, algorithms=["RS256", "RS384", "ES384"])
    except (httpx.HTTPError, JoseError, ValueError) as exc:
        raise LaunchError(f"The EHR's id_token could not be verified ({exc})", 502) from None
    claims = dict(token.claims)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences or float(claims.get("exp", 0)) < time.time() - 60:
        raise LaunchError("The EHR's id_token is not for this app or has expired", 502)
    return claims
