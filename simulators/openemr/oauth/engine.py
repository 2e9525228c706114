"""authlib's RFC 6749 server, wired to the simulator's store (authlib has no FastAPI binding).

authlib supplies the protocol grammar: parameter and client checks, client authentication,
PKCE, error objects and their redirects. This module gives it what a framework integration
would: a request object built from an already-read HTTP request (`RawRequest`), a client model,
and a response sink (`Reply`). authlib ships no type information, hence the `type: ignore`s on
the lines that touch it; nothing authlib-typed leaves this package.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request  # type: ignore[import-untyped]

from simulators.openemr.oauth.context import ServerContext
from simulators.openemr.oauth.models import AuthContext, Client
from simulators.openemr.oauth.scope_lists import SUPPORTED_SCOPES
from simulators.openemr.oauth.tokens import TokenIssuer


@dataclass(frozen=True, slots=True)
class RawRequest:
    """An HTTP request already read by the route: authlib's view of it is built from this."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """What authlib answers: status, body (dict or str) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class OAuthRequest(OAuth2Request):  # type: ignore[misc]
    """authlib's request over a RawRequest; `launch` is filled in by the SMART checks."""

    def __init__(self, raw: RawRequest) -> None:
        # authlib refuses non-TLS URLs off loopback; OpenEMR needs TLS too, but the demo
        # simulator runs plain HTTP on private hosts, so authlib sees the https twin.
        super().__init__(raw.method, _as_https(raw.url), headers=raw.headers)
        self.uri = raw.url
        self.raw = raw
        self.payload = _Payload(raw.query + raw.form)
        self._form = dict(raw.form)
        self.launch: Any = None

    @property
    def args(self) -> dict[str, str]:
        return dict(self.raw.query)

    @property
    def form(self) -> dict[str, str]:
        return self._form


class ClientModel:
    """authlib's ClientMixin over a registered Client (OpenEMR's rules for each method)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.client.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(self.client.scopes)
        registered = set(self.client.scopes)
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in registered)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        secret = self.client.client_secret
        return secret is not None and hmac.compare_digest(secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:  # noqa: ARG002
        if method == "none":
            return not self.client.confidential
        if method == "private_key_jwt":
            return self.client.has_keys
        return self.client.confidential

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:  # noqa: ARG002
        return True  # OpenEMR does not restrict grants per client; client auth does


class Engine(AuthorizationServer):  # type: ignore[misc]
    """The authorization server proper; grants and endpoints are registered by `build`."""

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__(scopes_supported=sorted(SUPPORTED_SCOPES))
        self.ctx = ctx
        self.issuer = TokenIssuer(ctx)
        self.register_token_generator("default", self._generate)

    def _generate(
        self,
        grant_type: str,
        client: ClientModel,
        user: AuthContext | None = None,
        scope: str | None = None,
        expires_in: int | None = None,  # noqa: ARG002 (lifetimes are fixed by grant type)
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        return self.issuer.generate(
            client.client, grant_type, user, scope, include_refresh_token=include_refresh_token
        )

    def query_client(self, client_id: str) -> ClientModel | None:
        client = self.ctx.store.client(client_id)
        return ClientModel(client) if client is not None and client.enabled else None

    def save_token(self, token: dict[str, Any], request: OAuthRequest) -> None:
        """Tokens are recorded by the issuer as they are minted; nothing left to save."""

    def create_oauth2_request(self, request: RawRequest | OAuthRequest) -> OAuthRequest:
        return request if isinstance(request, OAuthRequest) else OAuthRequest(request)

    def create_json_request(self, request: RawRequest) -> Any:
        raise NotImplementedError("no JSON endpoints go through authlib here")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Reply:
        return Reply(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signal hook: the simulator has no listeners."""


def _as_https(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("https", *parts[1:])) if parts.scheme == "http" else url
