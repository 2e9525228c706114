"""RFC 7662 introspection as OpenEMR answers it: client-authenticated, own tokens only.

A client may introspect only tokens issued to it; anything else (unknown, expired, revoked,
someone else's) is `{"active": false}`, never an error, so a resource server cannot probe.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint  # type: ignore[import-untyped]

from simulators.openemr.oauth.engine import ClientModel, OAuthRequest
from simulators.openemr.oauth.grants import USER_AUTH_METHODS
from simulators.openemr.oauth.models import IssuedToken, RefreshRecord


class _Introspected:
    """authlib's token view of an access-token record or a refresh-token record."""

    def __init__(self, body: dict[str, Any], client_id: str) -> None:
        self.body = body
        self.client_id = client_id

    def is_expired(self) -> bool:
        return False  # lookups return live tokens only

    def is_revoked(self) -> bool:
        return False


def _access_body(issued: IssuedToken) -> dict[str, Any]:
    grant = issued.grant
    body: dict[str, Any] = {
        "active": True,
        "scope": " ".join(sorted(grant.scopes)),
        "client_id": grant.client_id,
        "token_type": "Bearer",
        "exp": grant.expires_at,
        "iat": issued.issued_at,
        "sub": issued.subject,
    }
    if grant.patient:
        body["patient"] = grant.patient
    if grant.encounter:
        body["encounter"] = grant.encounter
    if grant.user:
        body["fhirUser"] = grant.user
    return body


def _refresh_body(record: RefreshRecord) -> dict[str, Any]:
    account = record.context.account
    body: dict[str, Any] = {
        "active": True,
        "scope": record.scope,
        "client_id": record.client_id,
        "token_type": "refresh_token",
        "exp": int(record.expires_at),
    }
    if account is not None:
        body["sub"] = account.uuid
    if record.context.patient:
        body["patient"] = record.context.patient
    return body


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = USER_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Introspected | None:
        ctx = self.server.ctx
        if token_type_hint != "refresh_token":
            issued: IssuedToken | None = self.server.issuer.lookup(token_string)
            if issued is not None:
                return _Introspected(_access_body(issued), issued.grant.client_id)
        record: RefreshRecord | None = ctx.store.refresh(token_string)
        if record is not None:
            return _Introspected(_refresh_body(record), record.client_id)
        return None

    def check_permission(
        self,
        token: _Introspected,
        client: ClientModel,
        request: OAuthRequest,  # noqa: ARG002
    ) -> bool:
        return token.client_id == client.get_client_id()

    def introspect_token(self, token: _Introspected) -> dict[str, Any]:
        return dict(token.body)
