"""OpenEMR's grants as authlib grants (source-systems.md §1.3), plus private_key_jwt auth.

- authorization_code: PKCE (S256 or plain, as league accepts) required for public clients at
  /authorize; `aud` must be one of OpenEMR's audiences; a `launch` must open; codes live 60 s,
  are single use, and a replayed code revokes what the first exchange issued.
- refresh_token: rotated on every use.
- client_credentials: only with a private_key_jwt assertion and only system/ scopes.
- password: `user_role` users|patient (patients also give `email`); wrong ones are invalid_grant.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import httpx
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.grants import (  # type: ignore[import-untyped]
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)

from simulators.openemr.oauth.context import ServerContext
from simulators.openemr.oauth.crypto import (
    AssertionRejected,
    assertion_subject,
    verify_client_assertion,
)
from simulators.openemr.oauth.engine import ClientModel, OAuthRequest
from simulators.openemr.oauth.models import AuthContext, CodeRecord, RefreshRecord

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CODE_TTL = 60
USER_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class _Code:
    """authlib's AuthorizationCodeMixin over a CodeRecord."""

    def __init__(self, record: CodeRecord) -> None:
        self.record = record
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class _Refresh:
    """authlib's TokenMixin over a RefreshRecord."""

    def __init__(self, record: RefreshRecord) -> None:
        self.record = record

    def check_client(self, client: ClientModel) -> bool:
        return client.get_client_id() == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope


class AuthCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS

    @property
    def ctx(self) -> ServerContext:
        ctx: ServerContext = self.server.ctx
        return ctx

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        try:
            self._validate_smart()
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def _validate_smart(self) -> None:
        request: OAuthRequest = self.request
        data = request.payload.data
        if data.get("aud") not in self.ctx.urls.audiences:
            raise InvalidRequestError("aud must be the FHIR base URL of this server")
        if not request.client.client.confidential and not data.get("code_challenge"):
            raise InvalidRequestError("Code challenge must be provided for public clients")
        launch = data.get("launch")
        if launch:
            request.launch = self.ctx.sealer.open(launch)
            if request.launch is None:
                raise InvalidRequestError("Invalid launch parameter")

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        data = request.payload.data
        record = CodeRecord(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            context=request.user,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires_at=self.ctx.clock() + CODE_TTL,
        )
        self.ctx.store.add_code(record)

    def query_authorization_code(self, code: str, client: ClientModel) -> _Code | None:
        record = self.ctx.store.code(code)
        if record is None:
            if self.ctx.store.was_spent(code):
                self.ctx.store.revoke_origin(code)
            return None
        return _Code(record) if record.client_id == client.get_client_id() else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        self.ctx.store.spend_code(authorization_code.record.code)

    def authenticate_user(self, authorization_code: _Code) -> AuthContext:
        record = authorization_code.record
        return replace(record.context, origin=record.code)


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        record = self.server.ctx.store.refresh(refresh_token)
        return _Refresh(record) if record is not None else None

    def authenticate_user(self, refresh_token: _Refresh) -> AuthContext:
        return refresh_token.record.context

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        self.server.ctx.store.drop_refresh(refresh_token.record.token)


class SystemGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["private_key_jwt"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        scope = self.request.payload.scope or ""
        if any(not s.startswith("system/") for s in scope.split()):
            raise InvalidScopeError("client_credentials grants only system/ scopes")


class PasswordGrant(ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        form = self.request.form
        for name in ("user_role", "username", "password"):
            if not form.get(name):
                raise InvalidRequestError(f"Missing '{name}' in request.")
        account = self.server.ctx.authenticate(form["username"], form["password"])
        role = form["user_role"]
        if account is None or account.role != role:
            raise InvalidGrantError("The user credentials were incorrect.")
        if role == "patient" and form.get("email") != account.email:
            raise InvalidGrantError("The user credentials were incorrect.")
        self.request.client = client
        self.request.user = AuthContext(account, patient=account.own_patient)
        self.validate_requested_scope()


class PrivateKeyJWT:
    """Client authentication by a signed JWT assertion (RFC 7523, SMART Backend Services)."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def __call__(self, query_client: Any, request: OAuthRequest) -> ClientModel | None:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        client_id = assertion_subject(assertion)
        model: ClientModel | None = query_client(client_id) if client_id else None
        if model is None or not model.client.has_keys:
            raise InvalidClientError(status_code=401, description="Client authentication failed")
        try:
            jwks = self._ctx.client_jwks(model.client)
            claims = verify_client_assertion(
                assertion,
                client_id=model.client.client_id,
                jwks=jwks,
                audience=self._ctx.urls.token,
                now=self._ctx.clock(),
            )
        except AssertionRejected as rejected:
            raise InvalidClientError(
                description=f"Client authentication failed: {rejected}"
            ) from rejected
        except (httpx.HTTPError, ValueError) as exc:  # an unreachable or malformed jwks_uri
            raise InvalidClientError(description="Client keys could not be read") from exc
        if not self._ctx.store.claim_assertion_id(
            model.client.client_id, claims["jti"], float(claims["exp"])
        ):
            raise InvalidClientError(description="Client authentication failed: jti replayed")
        return model
