"""EHR and standalone launch, and the OAuth callback (SMART App Launch 2.2).

`GET /smart/launch?iss&launch` (EHR launch) and `GET /smart/standalone?iss` (patient picker at
the EHR) start a fresh server-side session, discover the issuer, and redirect to its authorize
endpoint with PKCE S256 and a `state` bound to the session cookie. `/smart/callback` checks that
the `state` returned is the one this browser's session sent, redeems the code with the verifier
only the server knows, and keeps tokens and context server-side. A CDS card's smart link lands on
`/smart/launch` too: the view it asks for (query or `appContext`) is where the user arrives.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from smart_app import oauth
from smart_app.audit import audit_event, record
from smart_app.config import STANDALONE_EXTRA
from smart_app.oauth import LaunchError
from smart_app.sessions import COOKIE, Session
from smart_app.state import SmartState

log = logging.getLogger(__name__)
VIEW_KEYS = ("view", "imagingStudy", "study", "series")


def set_cookie(state: SmartState, response: Response, session: Session) -> None:
    """`HttpOnly; Secure; SameSite=None; Partitioned`: the session must survive OpenEMR's
    cross-site iframe (client-js #115), where browsers that block third-party cookies still keep
    a partitioned (CHIPS) one, since the launch, the login and the pages all happen in the frame.
    Written by hand: Python's http.cookies knows `Partitioned` only from 3.14."""
    parts = [
        f"{COOKIE}={session.id}",
        f"Max-Age={state.settings.session_ttl_s}",
        "Path=/",
        "HttpOnly",
    ]
    if state.settings.cookie_secure:
        parts += ["Secure", "SameSite=None", "Partitioned"]
    else:
        parts.append("SameSite=Lax")
    response.headers.append("set-cookie", "; ".join(parts))


def view_target(context: dict[str, Any] | None) -> str:
    """The page a launch lands on, from the view it names (appContext or link query)."""
    ctx = context or {}
    view = str(ctx.get("view", ""))
    if view in {"imaging", "imaging-study"} and ctx.get("imagingStudy"):
        study = str(ctx["imagingStudy"]).removeprefix("ImagingStudy/")
        query = {"series": str(ctx["series"])} if ctx.get("series") else {}
        return f"/smart/imaging/{study}" + (f"?{urlencode(query)}" if query else "")
    if view in {"imaging", "imaging-study"}:
        return "/smart/imaging"
    if view == "risk":
        return "/smart/risk"
    return "/smart/orders"


def _app_context(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def build_router(state: SmartState) -> APIRouter:
    router = APIRouter()

    async def start(request: Request, iss: str, launch: str | None) -> Response:
        if iss.rstrip("/") not in {i.rstrip("/") for i in state.settings.issuers}:
            raise LaunchError(f"This app may not be launched by {iss}: not an allowed EHR", 403)
        state.client_auth()  # fail before redirecting when the app is not registered
        config = await state.discover(iss.rstrip("/"))
        session = state.sessions.new()
        verifier, challenge = oauth.pkce_pair()
        session.iss, session.code_verifier = iss.rstrip("/"), verifier
        session.state = secrets.token_urlsafe(32)  # 256 bits
        session.token_endpoint = config.token_endpoint
        session.jwks_uri = config.jwks_uri
        session.launch_kind = "ehr" if launch else "standalone"
        hints = {k: request.query_params[k] for k in VIEW_KEYS if request.query_params.get(k)}
        session.app_context = hints or None
        scope = state.settings.scopes_v2
        if not launch:
            scope = " ".join(s for s in scope.split() if s != "launch") + " " + STANDALONE_EXTRA
        url = oauth.authorize_url(
            config,
            client_id=state.client_auth()[0],
            redirect_uri=state.base(request) + "/smart/callback",
            scope=scope,
            state=session.state,
            challenge=challenge,
            aud=session.iss,
            launch=launch,
        )
        response = RedirectResponse(url, status_code=302)
        set_cookie(state, response, session)
        return response

    @router.get("/launch")
    async def launch(request: Request) -> Response:
        q = request.query_params
        iss, token = q.get("iss"), q.get("launch")
        if not iss or not token:
            current = state.session(request)
            if current is not None and current.authorized:
                hints = {k: q[k] for k in VIEW_KEYS if q.get(k)}
                return RedirectResponse(view_target(hints), status_code=303)
            raise LaunchError("An EHR launch needs the `iss` and `launch` parameters")
        return await start(request, iss, token)

    @router.get("/standalone")
    async def standalone(request: Request) -> Response:
        iss = request.query_params.get("iss") or next(iter(state.settings.issuers), "")
        if not iss:
            raise LaunchError("No EHR is configured (CDSS_SMART_ISSUERS)")
        return await start(request, iss, None)

    @router.get("/callback")
    async def callback(request: Request) -> Response:
        q = request.query_params
        session = state.session(request)
        if session is None or session.state is None or session.code_verifier is None:
            raise LaunchError("This sign-in was not started in this browser; launch the app again")
        if not hmac.compare_digest(q.get("state", ""), session.state):
            log.warning("SMART callback with a state that does not match the session's")
            raise LaunchError("The sign-in response does not match this session (state)")
        if q.get("error"):
            raise LaunchError(f"The EHR did not authorize the app: {q['error']}", 403)
        code = q.get("code")
        if not code or session.token_endpoint is None:
            raise LaunchError("The EHR's answer has no authorization code")
        verifier, session.code_verifier, session.state = session.code_verifier, None, None
        tokens, body = await oauth.exchange_code(
            state.http,
            session.token_endpoint,
            code=code,
            redirect_uri=state.base(request) + "/smart/callback",
            verifier=verifier,
            auth=state.client_auth(),
        )
        patient = body.get("patient")
        if not patient:
            raise LaunchError("The EHR established no patient in context", 403)
        session.tokens, session.patient = tokens, str(patient)
        session.encounter = body.get("encounter")
        session.user = await _fhir_user(state, session, tokens.id_token)
        context = _app_context(body.get("appContext")) or session.app_context or {}
        for item in body.get("fhirContext") or []:
            ref = str(item.get("reference", "")) if isinstance(item, dict) else ""
            if ref.startswith("ImagingStudy/"):
                context = {"view": "imaging", "imagingStudy": ref, **context}
        session.app_context = context
        await record(
            state.audit,
            audit_event(
                event="launch",
                path="/smart/callback",
                status=200,
                patient=session.patient,
                user=session.user,
                client_id=state.settings.client_id,
            ),
        )
        return RedirectResponse(view_target(context), status_code=303)

    @router.get("/logout")
    async def logout(request: Request) -> Response:
        session = state.session(request)
        if session is not None:
            state.sessions.drop(session.id)
        response = RedirectResponse("/smart/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router


async def _fhir_user(state: SmartState, session: Session, id_token: str | None) -> str | None:
    """The verified `fhirUser` claim of the id_token (for the audit trail and display)."""
    if not id_token:
        return None
    claims = await oauth.verify_id_token(
        state.http, session.jwks_uri, id_token, state.client_auth()[0]
    )
    user = claims.get("fhirUser")
    return str(user) if user else None
