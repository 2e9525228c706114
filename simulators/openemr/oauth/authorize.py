"""The /authorize conversation: validate, ask the user (or auto-approve), issue the code.

authlib validates the request (client, redirect URI, response type, scopes, PKCE, and the SMART
checks in grants.AuthCodeGrant). Errors go back to the client by redirect only once the client
and its redirect URI are known good; otherwise the user sees an error page (RFC 6749 §4.1.2.1).
The pending request waits server-side under a random id while the login form is shown, so the
form cannot be used to alter what the client asked for.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    InvalidRequestError,
    OAuth2Error,
)

from simulators.openemr.oauth import pages
from simulators.openemr.oauth.engine import Engine, OAuthRequest, RawRequest, Reply
from simulators.openemr.oauth.models import AuthContext, PendingAuthorization, UserAccount

PENDING_TTL = 600


@dataclass(frozen=True, slots=True)
class Html:
    status: int
    html: str


class AuthorizeFlow:
    """GET|POST /authorize and the login form's POST (OpenEMR's /provider/login)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ctx = engine.ctx

    @property
    def form_action(self) -> str:
        return self._ctx.urls.oauth("provider/login")

    def start(self, raw: RawRequest) -> Reply | Html:
        try:
            grant = self._engine.get_consent_grant(raw)
        except OAuth2Error as error:
            return self._error(error)
        if self._ctx.auto_approve:
            return self._approve(grant, self._ctx.default_user, chosen_patient=None)
        pending = PendingAuthorization(
            request_id=secrets.token_urlsafe(24),
            params=dict(raw.query + raw.form),
            expires_at=self._ctx.clock() + PENDING_TTL,
        )
        self._ctx.store.add_pending(pending)
        return Html(200, self._login(grant, pending.request_id))

    def decide(self, form: Mapping[str, str]) -> Reply | Html:
        request_id = form.get("request_id", "")
        pending = self._ctx.store.pending(request_id)
        if pending is None:
            return Html(400, pages.error_page("invalid_request", "Unknown or expired login"))
        url = self._ctx.urls.oauth("authorize")
        raw = RawRequest("GET", url, {}, tuple(pending.params.items()))
        try:
            grant = self._engine.get_consent_grant(raw)
        except OAuth2Error as error:
            return self._error(error)
        if form.get("action") != "approve":
            self._ctx.store.drop_pending(request_id)
            reply: Reply = self._engine.create_authorization_response(
                grant.request, grant_user=None, grant=grant
            )
            return reply
        account = self._ctx.authenticate(form.get("username", ""), form.get("password", ""))
        if account is None:
            page = self._login(grant, request_id, "Invalid username or password", form)
            return Html(200, page)
        self._ctx.store.drop_pending(request_id)
        return self._approve(grant, account, chosen_patient=form.get("patient"))

    def _approve(
        self, grant: Any, account: UserAccount | None, chosen_patient: str | None
    ) -> Reply | Html:
        try:
            context = self._context(grant.request, account, chosen_patient)
        except OAuth2Error as error:
            error.redirect_uri = grant.redirect_uri
            error.state = grant.request.payload.state
            return self._error(error)
        reply: Reply = self._engine.create_authorization_response(
            grant.request, grant_user=context, grant=grant
        )
        return reply

    def _context(
        self, request: OAuthRequest, account: UserAccount | None, chosen_patient: str | None
    ) -> AuthContext:
        if account is None:
            raise InvalidRequestError("No user is configured to approve this request")
        scopes = request.scope.split()
        base = AuthContext(
            account, nonce=request.payload.data.get("nonce"), auth_time=self._ctx.now()
        )
        launch = request.launch
        if launch is not None and "launch" in scopes:
            return replace(
                base,
                launch="ehr",
                patient=launch.patient,
                encounter=launch.encounter,
                intent=launch.intent,
            )
        if "launch/patient" in scopes:
            patient = account.own_patient or self._pick(chosen_patient)
            if patient is None:
                raise InvalidRequestError("launch/patient requires a selected patient")
            return replace(base, launch="standalone", patient=patient)
        return replace(base, patient=account.own_patient)

    def _pick(self, chosen: str | None) -> str | None:
        if self._ctx.auto_approve:
            return self._ctx.first_patient()
        choices = self._ctx.patient_picker() if self._ctx.patient_picker else ()
        return chosen if chosen in {uuid for uuid, _ in choices} else None

    def _login(
        self,
        grant: Any,
        request_id: str,
        error: str | None = None,
        form: Mapping[str, str] | None = None,
    ) -> str:
        request: OAuthRequest = grant.request
        scopes = request.scope.split()
        wants_picker = "launch/patient" in scopes and request.launch is None
        patients = None
        if wants_picker:
            patients = list(self._ctx.patient_picker()) if self._ctx.patient_picker else []
        client = request.client.client
        return pages.login_page(
            action=self.form_action,
            request_id=request_id,
            client_name=str(client.metadata.get("client_name") or client.client_id),
            scopes=scopes,
            patients=patients,
            error=error,
            username=(form or {}).get("username", ""),
        )

    def _error(self, error: Any) -> Reply | Html:
        if error.redirect_uri:
            status, body, headers = error()
            return Reply(status, body, headers)
        return Html(error.status_code, pages.error_page(error.error, error.description))
