"""The facade as an ASGI app, mounted at /fhir by cdss.app.

Every error leaves as an OperationOutcome with the status that fits, including the framework's
own (unknown route, wrong method): FHIR clients never see an HTML or a bare JSON error.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from fhir_facade import errors
from fhir_facade.api import http
from fhir_facade.api.routes import router
from fhir_facade.api.state import FacadeState

log = logging.getLogger(__name__)
_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def http_error_outcome(exc: HTTPException) -> Response:
    """A framework error (no route, wrong method) as an OperationOutcome. The app routes paths
    the mount cannot take (e.g. a %0A in an id: the mount's pattern stops at a line break) here
    too, so a FHIR client never gets a bare JSON error under /fhir."""
    code = _HTTP_CODES.get(exc.status_code, "processing")
    issue = errors.Issue(code, str(exc.detail))
    headers = dict(exc.headers or {})  # a 405 must say what is Allowed
    return http.outcome_response(errors.OperationOutcomeError(exc.status_code, [issue], headers))


def create_facade(state: FacadeState) -> FastAPI:
    app = FastAPI(
        title="FHIR R4 facade", openapi_url="/openapi.json", docs_url=None, redoc_url=None
    )
    app.state.facade = state
    app.include_router(router)

    @app.exception_handler(errors.OperationOutcomeError)
    async def on_outcome(_request: Request, exc: errors.OperationOutcomeError) -> Response:
        return http.outcome_response(exc)

    @app.exception_handler(HTTPException)
    async def on_http(_request: Request, exc: HTTPException) -> Response:
        return http_error_outcome(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request: Request, exc: RequestValidationError) -> Response:
        issues = [
            errors.Issue(
                "invalid",
                str(e.get("msg")),
                expression=(".".join(str(x) for x in e.get("loc", ())),),
            )
            for e in exc.errors()
        ]
        return http.outcome_response(errors.OperationOutcomeError(400, issues))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, _exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        issue = errors.Issue(
            "exception", "internal error; the server log has the details", severity="fatal"
        )
        return http.outcome_response(errors.OperationOutcomeError(500, [issue]))

    return app
