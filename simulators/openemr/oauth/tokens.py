"""Issuing and checking tokens the way OpenEMR's league/oauth2-server setup does (§1.3).

Access tokens are RS256 JWTs (league's claims: aud=client_id, jti, iat, nbf, exp, sub, scopes)
whose jti must also be on record, so revocation works. Lifetimes: 1 h for user grants, 300 s for
client_credentials; refresh tokens (3 months) only with `offline_access`. The response carries
OpenEMR's extras first (id_token, SMART launch context, `scope`) then the bearer fields, and its
`scope` leaves out scopes containing ':' (api:oemr, api:fhir, site:...) as IdTokenSMARTResponse
does, although the token itself holds them.
"""

from __future__ import annotations

import secrets
from typing import Any

from simulators.openemr.oauth.context import SYSTEM_USER_UUID, ServerContext
from simulators.openemr.oauth.models import (
    AccessGrant,
    AuthContext,
    Client,
    IssuedToken,
    RefreshRecord,
)

USER_TOKEN_TTL = 3600
SYSTEM_TOKEN_TTL = 300
REFRESH_TOKEN_TTL = 90 * 24 * 3600


def finalize_scopes(scope: str | None, client: Client, grant_type: str) -> list[str]:
    """Requested scopes the client registered (OpenEMR's finalizeScopes drops the rest)."""
    requested = scope.split() if scope else list(client.scopes)
    granted = [s for s in dict.fromkeys(requested) if s in client.scopes]
    if grant_type == "client_credentials":
        granted = [s for s in granted if s.startswith("system/")]
    return granted


class TokenIssuer:
    """authlib's token generator, and the lookup behind verify() and introspection."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def generate(
        self,
        client: Client,
        grant_type: str,
        user: AuthContext | None,
        scope: str | None,
        include_refresh_token: bool,
    ) -> dict[str, Any]:
        scopes = finalize_scopes(scope, client, grant_type)
        ttl = SYSTEM_TOKEN_TTL if grant_type == "client_credentials" else USER_TOKEN_TTL
        body: dict[str, Any] = {}
        account = user.account if user else None
        if "openid" in scopes and account is not None and user is not None:
            body["id_token"] = self._id_token(client, user, scopes, ttl)
        body.update(self._launch_params(scopes, user))
        body["scope"] = " ".join(s for s in scopes if ":" not in s)
        body["token_type"] = "Bearer"
        body["expires_in"] = ttl
        body["access_token"] = self._access_token(client, user, scopes, ttl)
        if include_refresh_token and user is not None and "offline_access" in scopes:
            body["refresh_token"] = self._refresh_token(client, user, scopes)
        return body

    def _access_token(
        self, client: Client, user: AuthContext | None, scopes: list[str], ttl: int
    ) -> str:
        now = self._ctx.now()
        account = user.account if user else None
        subject = account.uuid if account else SYSTEM_USER_UUID
        jti = secrets.token_hex(40)
        grant = AccessGrant(
            client_id=client.client_id,
            scopes=frozenset(scopes),
            patient=_bound_patient(user),
            encounter=user.encounter if user else None,
            user=account.fhir_user if account else None,
            expires_at=now + ttl,
        )
        origin = user.origin if user else None
        self._ctx.store.add_access(IssuedToken(jti, grant, subject, now, origin))
        claims = {
            "aud": client.client_id,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "sub": subject,
            "scopes": scopes,
        }
        return self._ctx.key.sign(claims)

    def _id_token(self, client: Client, user: AuthContext, scopes: list[str], ttl: int) -> str:
        account = user.account
        assert account is not None  # only user grants get an id_token
        now = self._ctx.now()
        claims: dict[str, Any] = {
            "iss": self._ctx.urls.oauth_base,
            "aud": client.client_id,
            "iat": now,
            "exp": now + ttl,
            "sub": account.uuid,
        }
        if user.nonce:
            claims["nonce"] = user.nonce
        if user.auth_time is not None:
            claims["auth_time"] = user.auth_time
        if "fhirUser" in scopes:
            claims["fhirUser"] = account.fhir_user
        if "email" in scopes and account.email:
            claims["email"] = account.email
        if "profile" in scopes and account.name:
            claims["name"] = account.name
        return self._ctx.key.sign(claims)

    def _launch_params(self, scopes: list[str], user: AuthContext | None) -> dict[str, Any]:
        """SMART context, as SMARTSessionTokenContextBuilder orders it: a granted
        `launch/patient` wins (patient only, banner needed), else an EHR `launch`."""
        if user is None:
            return {}
        style = self._ctx.urls.smart_style
        if "launch/patient" in scopes and user.patient:
            return {"patient": user.patient, "need_patient_banner": True, "smart_style_url": style}
        if "launch" in scopes and user.launch == "ehr":
            params: dict[str, Any] = {}
            if user.patient:
                params.update(patient=user.patient, need_patient_banner=False)
            if user.encounter:
                params["encounter"] = user.encounter
            if user.intent:
                params["intent"] = user.intent
            params["smart_style_url"] = style
            return params
        return {}

    def _refresh_token(self, client: Client, user: AuthContext, scopes: list[str]) -> str:
        token = "def502" + secrets.token_hex(60)  # league's refresh tokens start so
        expires = self._ctx.now() + REFRESH_TOKEN_TTL
        self._ctx.store.add_refresh(
            RefreshRecord(token, client.client_id, " ".join(scopes), user, expires)
        )
        return token

    def lookup(self, bearer_token: str) -> IssuedToken | None:
        """The record of a live access token: good signature, unexpired, not revoked."""
        claims = self._ctx.key.decode(bearer_token)
        if claims is None:
            return None
        now = self._ctx.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now:
            return None
        jti = claims.get("jti")
        issued = self._ctx.store.access(jti) if isinstance(jti, str) else None
        if issued is None or issued.grant.expires_at <= now:
            return None
        return issued


def _bound_patient(user: AuthContext | None) -> str | None:
    if user is None:
        return None
    if user.patient:
        return user.patient
    return user.account.own_patient if user.account else None
