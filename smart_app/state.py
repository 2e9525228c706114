"""What every route of the SMART app shares: settings, sessions, HTTP client, keys, audit."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey
from starlette.requests import Request

from smart_app import oauth
from smart_app.audit import Writer
from smart_app.config import SmartSettings
from smart_app.oauth import LaunchError
from smart_app.sessions import COOKIE, Session, SessionStore

DISCOVERY_TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The app's ES384 key as a CDS client (#trusting-cds-clients); its JWKS is public."""

    key: ECKey
    kid: str

    def public_jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "alg": "ES384", "use": "sig"}]}


def load_key(path: Path) -> SigningKey:
    """Read the key, or create it (mode 0600) on first use."""
    if path.exists():
        data = json.loads(path.read_text())
        return SigningKey(ECKey.import_key(data), str(data["kid"]))
    key = ECKey.generate_key("P-384", private=True)
    kid = secrets.token_hex(8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({**key.as_dict(private=True), "kid": kid}))
    return SigningKey(key, kid)


@dataclass(slots=True)
class SmartState:
    settings: SmartSettings
    sessions: SessionStore
    http: httpx.AsyncClient
    key: SigningKey
    audit: Writer | None
    public_base: str | None  # CDSS_BASE_URL / CDSS_SMART_PUBLIC_URL, else per request
    dicomweb_url: str | None
    dicomweb_auth: httpx.Auth | None  # smart_app.pacs: the PACS factory's auth
    configs: dict[str, tuple[oauth.SmartConfig, float]] = field(default_factory=dict)

    async def discover(self, iss: str) -> oauth.SmartConfig:
        """The issuer's SMART configuration, re-read at most every 5 minutes."""
        cached = self.configs.get(iss)
        if cached is not None and time.time() - cached[1] < DISCOVERY_TTL_S:
            return cached[0]
        config = await oauth.discover(self.http, iss)
        self.configs[iss] = (config, time.time())
        return config

    def base(self, request: Request) -> str:
        if self.public_base:
            return self.public_base.rstrip("/")
        return str(request.base_url).rstrip("/")

    def facade(self, request: Request) -> str:
        url = self.settings.facade_url
        return str(url).rstrip("/") if url else self.base(request) + "/fhir"

    def cds_services(self, request: Request) -> list[str]:
        if self.settings.cds_services:
            return [u.rstrip("/") for u in self.settings.cds_services]
        return [self.base(request) + "/cds-services"]

    def client_auth(self) -> tuple[str, str]:
        secret = self.settings.client_secret
        if not self.settings.client_id or secret is None:
            raise LaunchError(
                "The SMART app is not registered: set CDSS_SMART_CLIENT_ID and "
                "CDSS_SMART_CLIENT_SECRET (see `cdss smart register`)",
                500,
            )
        return self.settings.client_id, secret.get_secret_value()

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    async def access_token(self, session: Session) -> str:
        """The session's access token, refreshed when it is about to expire; 401 otherwise."""
        tokens = session.tokens
        if tokens is None or session.token_endpoint is None:
            raise LaunchError("No SMART session: launch the app from the EHR", 401)
        if tokens.expires_at - self.settings.refresh_margin_s > time.time():
            return tokens.access_token
        if not tokens.refresh_token:
            raise LaunchError("The session expired: launch the app again from the EHR", 401)
        session.tokens = await oauth.refresh(
            self.http, session.token_endpoint, tokens, self.client_auth()
        )
        return session.tokens.access_token
