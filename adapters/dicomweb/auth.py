"""How a PACS client proves who it is: none, HTTP basic, a static bearer token, or an OAuth2
access token from an OIDC provider by the client-credentials grant (RFC 6749 4.4).

dcm4chee-arc secures its DICOMweb services with Keycloak: the archive accepts a bearer token
issued by the realm to a confidential client (README, "PACS"). Tokens are fetched with authlib,
cached, and fetched again `leeway` seconds before `expires_in` runs out, so no request carries
an expired token; a 401 anyway (revoked, clock skew) drops the cached token and the request is
sent once more with a fresh one. Secrets live only in these objects: their repr hides them and
nothing here logs a token, a password or a client secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from requests.auth import AuthBase, HTTPBasicAuth

logger = logging.getLogger(__name__)


class BearerAuth(AuthBase):
    """A fixed bearer token (an API gateway key, a long-lived service token)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("bearer auth needs a token")
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class ClientCredentialsAuth(AuthBase):
    """OAuth2 client credentials against an OIDC token endpoint, refreshed before expiry."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        leeway: float = 30.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (token_url and client_id and client_secret):
            raise ValueError("oauth2 auth needs a token URL, a client id and a client secret")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.leeway = leeway
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0  # tokens fetched so far (observability, tests)

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def token(self) -> str:
        """A token valid for at least `leeway` more seconds (fetching one if needed)."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self.leeway:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        with OAuth2Session(
            self.client_id,
            self._secret,
            scope=self.scope,
            token_endpoint_auth_method="client_secret_basic",
        ) as oauth:
            try:
                answer: dict[str, Any] = oauth.fetch_token(
                    self.token_url, grant_type="client_credentials", timeout=self.timeout
                )
            except Exception as exc:  # authlib raises OAuthError or requests errors
                message = f"token endpoint {self.token_url}: {type(exc).__name__}"
                logger.error("pacs auth: %s (client %s)", message, self.client_id)
                raise requests.ConnectionError(message) from None
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise requests.ConnectionError(f"token endpoint {self.token_url}: no access_token")
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float, str)) else 300.0
        self._token = token
        self._expires_at = self._clock() + lifetime
        self.fetches += 1
        logger.info(
            "pacs auth: token for client %s from %s, valid %.0f s",
            self.client_id,
            self.token_url,
            lifetime,
        )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """A 401 with a token we thought valid: fetch a new one and resend once."""
        if response.status_code != 401 or getattr(response.request, "_cdss_retried", False):
            return response
        self.invalidate()
        response.content  # noqa: B018 - drain, so the connection can be reused
        response.close()
        again = response.request.copy()
        again.headers["Authorization"] = f"Bearer {self.token()}"
        again._cdss_retried = True  # type: ignore[attr-defined]
        connection = response.connection
        resent: requests.Response = connection.send(again, **kwargs)
        resent.history.append(response)
        resent.request = again
        return resent


def basic_auth(user: str, password: str) -> HTTPBasicAuth:
    if not user:
        raise ValueError("basic auth needs a user")
    return HTTPBasicAuth(user, password)
