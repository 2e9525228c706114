"""Getting access tokens from OpenEMR (real or simulated) for the hub's own API calls.

Two flows, both behind `TokenProvider` so the FHIR client asks `token()` before each request
and `invalidate()` after a 401 (then retries once):

- `BackendServicesAuth`: SMART Backend Services, the sync's flow. client_credentials with an
  RS384 JWT client assertion (`private_key_jwt`), system/ scopes, 300 s tokens (§1.3).
- `PasswordGrantAuth`: the synthetic-cohort writer's flow. OpenEMR's password grant
  (`user_role=users`), renewed by refresh token when `offline_access` was granted.

Tokens are cached and renewed `refresh_margin` seconds before they expire, under a lock, so
concurrent callers share one token and one renewal. Secrets, assertions and tokens are never
logged nor put into exception messages.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from joserfc import jwt
from joserfc.jwk import KeyParameters, RSAKey

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALG = "RS384"
Clock = Callable[[], float]


class AuthError(Exception):
    """Token endpoint or registration refused; carries the OAuth error code, never secrets."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.error = error


class TokenProvider(Protocol):
    def token(self) -> str:
        """A bearer token valid for at least the refresh margin."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token (the server answered 401 with it)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An RSA signing key for private_key_jwt: keep `private_jwk` secret, register `jwks`."""

    private_jwk: dict[str, Any] = field(repr=False)
    jwks: dict[str, Any]

    @property
    def kid(self) -> str:
        return str(self.private_jwk["kid"])


def make_rsa_jwk(kid: str | None = None, key_size: int = 2048) -> KeyPair:
    """A fresh RS384 key pair as JWKs (the caller persists `private_jwk`)."""
    parameters: KeyParameters = {"use": "sig", "alg": ASSERTION_ALG}
    if kid:
        parameters["kid"] = kid
    key = RSAKey.generate_key(key_size, parameters=parameters)
    key.ensure_kid()
    return KeyPair(key.as_dict(private=True), {"keys": [key.as_dict(private=False)]})


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None = field(repr=False)
    registration_access_token: str = field(repr=False)
    registration_client_uri: str
    scope: str
    response: dict[str, Any] = field(repr=False)


def register_client(
    oauth_base: str, metadata: Mapping[str, Any], *, http: httpx.Client | None = None
) -> RegisteredClient:
    """Dynamic client registration at `{oauth_base}/registration` (OpenEMR answers 200)."""
    client = http or httpx.Client(timeout=10.0)
    try:
        response = client.post(f"{oauth_base.rstrip('/')}/registration", json=dict(metadata))
    finally:
        if http is None:
            client.close()
    body = _json_body(response, "registration")
    return RegisteredClient(
        client_id=str(body["client_id"]),
        client_secret=body.get("client_secret") or None,
        registration_access_token=str(body.get("registration_access_token", "")),
        registration_client_uri=str(body.get("registration_client_uri", "")),
        scope=str(body.get("scope", "")),
        response=body,
    )


def register_backend_client(
    oauth_base: str,
    *,
    client_name: str,
    scopes: str,
    jwks: Mapping[str, Any],
    redirect_uris: Sequence[str] = ("http://localhost/backend-services-unused",),
    http: httpx.Client | None = None,
) -> RegisteredClient:
    """Register a confidential SMART Backend Services client with its public keys.

    OpenEMR requires `redirect_uris` even for clients that never redirect, hence the default.
    The client may still need enabling by an OpenEMR admin before it can get tokens.
    """
    metadata = {
        "application_type": "private",
        "client_name": client_name,
        "redirect_uris": list(redirect_uris),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": scopes,
        "jwks": dict(jwks),
    }
    return register_client(oauth_base, metadata, http=http)


class _CachingProvider(TokenProvider):
    """Token cache with early renewal; subclasses say how to get a token (`_fetch`)."""

    def __init__(
        self,
        token_url: str,
        *,
        http: httpx.Client | None,
        clock: Clock,
        refresh_margin: float,
    ) -> None:
        self.token_url = token_url
        self._http = http or httpx.Client(timeout=10.0)
        self._owns_http = http is None
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at - self._margin:
                started = self._clock()
                body = self._fetch()
                self._access = str(body["access_token"])
                self._expires_at = started + float(body.get("expires_in", 0))
                log.info(
                    "OpenEMR token obtained from %s, valid %ss",
                    self.token_url,
                    body.get("expires_in"),
                )
            return self._access

    def invalidate(self) -> None:
        with self._lock:
            self._access = None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _fetch(self) -> dict[str, Any]:
        raise NotImplementedError

    def _post(self, form: Mapping[str, str], auth: tuple[str, str] | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"auth": httpx.BasicAuth(*auth)} if auth else {}
        response = self._http.post(
            self.token_url, data=dict(form), headers={"Accept": "application/json"}, **extra
        )
        body = _json_body(response, "token")
        if "access_token" not in body:
            raise AuthError("token response has no access_token", status=response.status_code)
        return body


class BackendServicesAuth(_CachingProvider):
    """SMART Backend Services: client_credentials + RS384 client assertion (RFC 7523)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_jwk: Mapping[str, Any],
        *,
        scopes: str,
        http: httpx.Client | None = None,
        clock: Clock = time.time,
        refresh_margin: float = 30.0,
        assertion_lifetime: int = 300,
    ) -> None:
        super().__init__(token_url, http=http, clock=clock, refresh_margin=refresh_margin)
        self.client_id = client_id
        self.scopes = scopes
        self._key = RSAKey.import_key(dict(private_jwk))
        self._key.ensure_kid()
        self._lifetime = assertion_lifetime

    def _assertion(self) -> str:
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + self._lifetime,
            "jti": str(uuid.uuid4()),
        }
        header = {"alg": ASSERTION_ALG, "kid": self._key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self._key, algorithms=[ASSERTION_ALG])

    def _fetch(self) -> dict[str, Any]:
        return self._post(
            {
                "grant_type": "client_credentials",
                "scope": self.scopes,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self._assertion(),
            }
        )


class PasswordGrantAuth(_CachingProvider):
    """OpenEMR's password grant (needs the `oauth_password_grant` global), refreshed by
    refresh token when `offline_access` is among the scopes; falls back to the password when
    the refresh token is refused."""

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str | None,
        username: str,
        password: str,
        scopes: str,
        user_role: str = "users",
        email: str | None = None,
        http: httpx.Client | None = None,
        clock: Clock = time.time,
        refresh_margin: float = 30.0,
    ) -> None:
        super().__init__(token_url, http=http, clock=clock, refresh_margin=refresh_margin)
        self.client_id = client_id
        self.scopes = scopes
        self._secret = client_secret
        self._credentials = {"username": username, "password": password, "user_role": user_role}
        if email:
            self._credentials["email"] = email
        self._refresh_token: str | None = None

    def _client_auth(self, form: dict[str, str]) -> tuple[str, str] | None:
        if self._secret is None:
            form["client_id"] = self.client_id
            return None
        return (self.client_id, self._secret)

    def _fetch(self) -> dict[str, Any]:
        if self._refresh_token is not None:
            form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
            try:
                body = self._post(form, self._client_auth(form))
            except AuthError as exc:
                if exc.error != "invalid_grant":
                    raise
                log.info("OpenEMR refresh token refused; signing in again")
            else:
                self._refresh_token = body.get("refresh_token") or self._refresh_token
                return body
        self._refresh_token = None
        form = {"grant_type": "password", "scope": self.scopes, **self._credentials}
        body = self._post(form, self._client_auth(form))
        self._refresh_token = body.get("refresh_token")
        return body


def _json_body(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        detail = body.get("error_description") if isinstance(body, dict) else None
        message = f"OpenEMR {what} failed: HTTP {response.status_code} {error or ''}".rstrip()
        if detail:
            message += f" ({detail})"
        raise AuthError(message, status=response.status_code, error=error)
    return body
