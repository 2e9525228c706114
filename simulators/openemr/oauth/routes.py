"""HTTP routes of the simulated OpenEMR authorization server (paths as in §1.1).

Routes read the request asynchronously, then run authlib and the store in the thread pool:
a client assertion may make the server fetch a `jwks_uri`, possibly from this very process,
which must not block the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from simulators.openemr.oauth import discovery, pages
from simulators.openemr.oauth.authorize import AuthorizeFlow, Html
from simulators.openemr.oauth.engine import Engine, RawRequest, Reply
from simulators.openemr.oauth.registration import RegistrationError, registration_response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
OAUTH = "/oauth2/default"


async def read_request(request: Request) -> RawRequest:
    form: tuple[tuple[str, str], ...] = ()
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        parsed = await request.form()
        form = tuple((k, v) for k, v in parsed.multi_items() if isinstance(v, str))
    query = tuple(request.query_params.multi_items())
    return RawRequest(request.method, str(request.url), request.headers, query, form)


def to_response(result: Reply | Html) -> Response:
    if isinstance(result, Html):
        return HTMLResponse(result.html, status_code=result.status)
    headers = dict(result.headers)
    if isinstance(result.body, dict):
        headers.pop("Content-Type", None)
        return JSONResponse(result.body, status_code=result.status, headers=headers)
    return Response(result.body or b"", status_code=result.status, headers=headers)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def build_router(engine: Engine, register: Callable[[Any], dict[str, Any]]) -> APIRouter:
    """All /oauth2/default/* routes plus SMART discovery under the FHIR base."""
    ctx = engine.ctx
    flow = AuthorizeFlow(engine)
    router = APIRouter(tags=["openemr-oauth"])

    @router.post(f"{OAUTH}/registration")
    async def registration(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            error = RegistrationError("invalid_client_metadata", "Unexpected content type")
            return JSONResponse(error.body(), status_code=400)
        try:
            metadata = json.loads(await request.body())
            body = register(metadata)
        except json.JSONDecodeError:
            error = RegistrationError("invalid_client_metadata", "No JSON body")
            return JSONResponse(error.body(), status_code=400)
        except RegistrationError as error:
            return JSONResponse(error.body(), status_code=400)
        return JSONResponse(body, headers=NO_STORE)

    @router.get(f"{OAUTH}/client/{{path}}")
    def client_details(path: str, request: Request) -> Response:
        client = ctx.store.client_by_registration_path(path)
        if client is None or _bearer(request) != client.registration_access_token:
            body = {"error": "invalid_request", "error_description": "Invalid client"}
            return JSONResponse(body, status_code=403)
        full = registration_response(client, oauth_base=ctx.urls.oauth_base)
        keys = ("client_id", "client_secret", "contacts", "client_name", "redirect_uris")
        details = {k: full[k] for k in keys if k in full}
        details["application_type"] = client.role  # OpenEMR answers the role here
        return JSONResponse(details, headers=NO_STORE)

    @router.api_route(f"{OAUTH}/authorize", methods=["GET", "POST"])
    async def authorize(request: Request) -> Response:
        raw = await read_request(request)
        return to_response(await run_in_threadpool(flow.start, raw))

    @router.post(f"{OAUTH}/provider/login")
    async def login(request: Request) -> Response:
        raw = await read_request(request)
        return to_response(await run_in_threadpool(flow.decide, dict(raw.form)))

    @router.post(f"{OAUTH}/token")
    async def token(request: Request) -> Response:
        raw = await read_request(request)
        return to_response(await run_in_threadpool(engine.create_token_response, raw))

    @router.post(f"{OAUTH}/introspect")
    async def introspect(request: Request) -> Response:
        raw = await read_request(request)
        result = await run_in_threadpool(engine.create_endpoint_response, "introspection", raw)
        return to_response(result)

    @router.get(f"{OAUTH}/jwk")
    def jwk() -> dict[str, Any]:
        return ctx.key.jwks()

    @router.api_route(f"{OAUTH}/userinfo", methods=["GET", "POST"])
    def userinfo(request: Request) -> Response:
        token = _bearer(request)
        issued = engine.issuer.lookup(token) if token else None
        if issued is None:
            body = {"error": "access_denied", "error_description": "Invalid or expired token"}
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        claims: dict[str, Any] = {"sub": issued.subject}
        account = next((a for a in ctx.users.values() if a.fhir_user == issued.grant.user), None)
        if account is not None:
            if "fhirUser" in issued.grant.scopes:
                claims["fhirUser"] = account.fhir_user
            if account.name and "profile" in issued.grant.scopes:
                claims["name"] = account.name
            if account.email and "email" in issued.grant.scopes:
                claims["email"] = account.email
        return JSONResponse(claims, headers=NO_STORE)

    @router.get(f"{OAUTH}/logout")
    def logout(request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri")
        hint = request.query_params.get("id_token_hint")
        claims = ctx.key.decode(hint) if hint else None
        client = ctx.store.client(str(claims.get("aud"))) if claims else None
        allowed = client.metadata.get("post_logout_redirect_uris", []) if client else []
        if target and target in allowed:
            return RedirectResponse(target, status_code=302)
        return HTMLResponse(pages.logout_page())

    @router.get(f"{OAUTH}/.well-known/openid-configuration")
    def openid_configuration() -> dict[str, Any]:
        return discovery.openid_configuration(ctx.urls, password_grant=ctx.password_grant)

    @router.get("/apis/default/fhir/.well-known/smart-configuration")
    def smart_configuration() -> dict[str, Any]:
        return discovery.smart_configuration(ctx.urls)

    @router.get("/public/smart-styles/smart-light.json")
    def smart_style() -> dict[str, str]:
        return discovery.SMART_STYLE

    return router
