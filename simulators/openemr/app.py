"""The OpenEMR simulator as one ASGI app: OAuth2/SMART, FHIR R4 and the standard API.

`create_openemr_app(public_base=...)` runs on its own under uvicorn (nothing from `cdss`):

    uvicorn --factory 'simulators.openemr.app:app_from_env'   # OPENEMR_SIM_PUBLIC_BASE=...

`public_base` ("http://127.0.0.1:PORT") plays OpenEMR's `site_addr_oath`: bundle `fullUrl`s,
links, the OAuth issuer and the audiences of client assertions are built from it, so it must be
the URL clients use. The app's `state.store` (the tables) and `state.oauth` (the authorization
server: register clients, create launches) are there for tests and the cohort writer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from simulators.openemr.api_documents import documents_router
from simulators.openemr.api_routes import api_router
from simulators.openemr.dashboard import dashboard_router
from simulators.openemr.fhir_routes import fhir_router
from simulators.openemr.oauth import OAuthServer, PatientChoice, UserAccount
from simulators.openemr.security import ApiError, Guard
from simulators.openemr.sim_routes import sim_router
from simulators.openemr.store import OpenEMRStore

log = logging.getLogger(__name__)


def create_openemr_app(
    *,
    public_base: str,
    auto_approve: bool = False,
    store: OpenEMRStore | None = None,
    users: Mapping[str, UserAccount] | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The simulator. `clock` (epoch seconds) drives token expiry and record timestamps."""
    base = public_base.rstrip("/")
    tables = store or OpenEMRStore(lambda: datetime.fromtimestamp(int(clock()), UTC))

    def patients() -> list[PatientChoice]:
        rows = tables.rows("patient_data")
        return [(str(r["uuid"]), f"{r.get('fname', '')} {r.get('lname', '')}") for r in rows]

    oauth = OAuthServer(
        base, auto_approve=auto_approve, users=users, patient_picker=patients, clock=clock
    )
    guard = Guard(oauth)
    app = FastAPI(title="OpenEMR simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = tables
    app.state.oauth = oauth
    app.include_router(oauth.router())  # first: it owns /apis/default/fhir/.well-known/...
    app.include_router(fhir_router(tables, guard, base))
    app.include_router(sim_router(tables, guard))
    app.include_router(documents_router(tables, guard))
    app.include_router(api_router(tables, guard))
    app.include_router(dashboard_router(tables, oauth))  # patient dashboard: SMART EHR launch
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, exc: ApiError) -> Response:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def on_http(_request: Request, exc: HTTPException) -> Response:
        body = {"error": "An error occurred", "message": str(exc.detail), "code": exc.status_code}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request: Request, exc: RequestValidationError) -> Response:
        fields = {
            ".".join(str(p) for p in e.get("loc", ())): str(e.get("msg")) for e in exc.errors()
        }
        return JSONResponse({"validationErrors": fields}, status_code=400)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, _exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"internalErrors": ["internal error; see the simulator log"]}
        return JSONResponse(body, status_code=500)


def app_from_env() -> FastAPI:
    """For `uvicorn --factory`: OPENEMR_SIM_PUBLIC_BASE, OPENEMR_SIM_AUTO_APPROVE=1."""
    base = os.environ.get("OPENEMR_SIM_PUBLIC_BASE", "http://127.0.0.1:8300")
    approve = os.environ.get("OPENEMR_SIM_AUTO_APPROVE", "") in {"1", "true", "yes"}
    return create_openemr_app(public_base=base, auto_approve=approve)
