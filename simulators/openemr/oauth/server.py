"""OAuthServer: the simulated OpenEMR authorization server, as the FHIR simulator uses it.

It owns the in-memory state (clients, keys, codes, launches, refresh tokens) and hands out:
`router()` for the HTTP side, `verify()` for the FHIR routes' bearer check, `create_launch()`
for what OpenEMR's patient dashboard does when a user opens a SMART app, and
`register_client()` to seed clients in code through the same rules as the HTTP endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from fastapi import APIRouter

from simulators.openemr.oauth.context import (
    DEFAULT_ADMIN,
    Clock,
    PatientPicker,
    ServerContext,
    Urls,
)
from simulators.openemr.oauth.crypto import LaunchSealer, ServerKey
from simulators.openemr.oauth.engine import Engine
from simulators.openemr.oauth.grants import (
    AuthCodeGrant,
    PasswordGrant,
    PrivateKeyJWT,
    RefreshGrant,
    SystemGrant,
)
from simulators.openemr.oauth.introspection import Introspection
from simulators.openemr.oauth.models import AccessGrant, Client, LaunchContext, UserAccount
from simulators.openemr.oauth.registration import register
from simulators.openemr.oauth.routes import build_router
from simulators.openemr.oauth.store import OAuthStore


class OAuthServer:
    """OpenEMR 8.2.0-dev's OAuth2/OIDC/SMART authorization server for site `default`.

    - `issuer_base`: "http://host:port"; FHIR base `{issuer_base}/apis/default/fhir`, OAuth base
      `{issuer_base}/oauth2/default`. Must be the URL clients use: it is the `aud` of client
      assertions and the issuer of id tokens.
    - `auto_approve`: skip the login/consent page and approve as `default_user` (the first
      `users`-role account unless named); standalone `launch/patient` then takes the first
      patient `patient_picker` lists.
    - `password_grant`: OpenEMR's `oauth_password_grant` global.
    - `users`: login accounts by username (default: OpenEMR's admin/pass).
    - `clock`: seconds since the epoch; injectable so tests can expire codes and tokens.
    """

    def __init__(
        self,
        issuer_base: str,
        *,
        auto_approve: bool = False,
        password_grant: bool = True,
        users: Mapping[str, UserAccount] | None = None,
        patient_picker: PatientPicker | None = None,
        default_user: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        accounts = dict(users) if users is not None else {DEFAULT_ADMIN.username: DEFAULT_ADMIN}
        self._ctx = ServerContext(
            urls=Urls(issuer_base.rstrip("/")),
            store=OAuthStore(clock),
            clock=clock,
            key=ServerKey(),
            sealer=LaunchSealer(),
            users=accounts,
            default_user=_default_user(accounts, default_user),
            patient_picker=patient_picker,
            auto_approve=auto_approve,
            password_grant=password_grant,
        )
        self._engine = _build_engine(self._ctx)

    @property
    def fhir_base(self) -> str:
        return self._ctx.urls.fhir_base

    @property
    def oauth_base(self) -> str:
        return self._ctx.urls.oauth_base

    def router(self) -> APIRouter:
        """All /oauth2/default/* routes and /apis/default/fhir/.well-known/smart-configuration."""
        return build_router(self._engine, self.register_client)

    def verify(self, bearer_token: str) -> AccessGrant | None:
        """The grant of a live access token (signature, expiry, revocation), else None."""
        issued = self._engine.issuer.lookup(bearer_token)
        return issued.grant if issued is not None else None

    def revoke(self, bearer_token: str) -> bool:
        """Revoke an access token, as OpenEMR's admin "revoke token" does; True if it was live."""
        issued = self._engine.issuer.lookup(bearer_token)
        return issued is not None and self._ctx.store.revoke_access(issued.jti)

    def create_launch(
        self, patient: str, encounter: str | None = None, *, intent: str | None = None
    ) -> str:
        """An opaque EHR launch token for this patient (and encounter), like the `launch`
        OpenEMR appends to a SMART app's launch URL from the patient dashboard (§1.10)."""
        return self._ctx.sealer.seal(LaunchContext(patient, encounter, intent))

    def register_client(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Register a client by OpenEMR's rules; the registration response (raises
        RegistrationError with the OAuth error code when refused)."""
        client, response = register(
            metadata, oauth_base=self._ctx.urls.oauth_base, now=self._ctx.now()
        )
        self._ctx.store.add_client(client)
        return response

    def launchable_apps(self) -> list[Client]:
        """What the patient summary's "SMART Enabled Apps" card lists (§1.10): enabled clients
        whose registered scopes include `launch` and that have a launch URI."""
        return [
            c
            for c in self._ctx.store.clients()
            if c.enabled and "launch" in c.scopes and c.launch_uri
        ]

    def client(self, client_id: str) -> Client | None:
        return self._ctx.store.client(client_id)

    def set_client_enabled(self, client_id: str, enabled: bool) -> None:
        """OpenEMR's Administration -> API Clients switch; disabled clients cannot authenticate."""
        client = self._ctx.store.client(client_id)
        if client is None:
            raise KeyError(client_id)
        client.enabled = enabled


def _default_user(accounts: Mapping[str, UserAccount], name: str | None) -> UserAccount | None:
    if name is not None:
        return accounts[name]
    return next((a for a in accounts.values() if a.role == "users"), None)


def _build_engine(ctx: ServerContext) -> Engine:
    engine = Engine(ctx)
    engine.register_client_auth_method("private_key_jwt", PrivateKeyJWT(ctx))
    engine.register_grant(AuthCodeGrant, [CodeChallenge(required=True)])
    engine.register_grant(RefreshGrant)
    engine.register_grant(SystemGrant)
    if ctx.password_grant:
        engine.register_grant(PasswordGrant)
    engine.register_endpoint(Introspection)
    return engine
