"""Assembly: the `/smart` app (launch, pages, static files) and the `/dicom-web` proxy.

`create_smart(settings, store)` returns the two ASGI apps `cdss.app.create_app` mounts. The
store is used only to write the app's AuditEvents; every page reads data through the facade's
HTTP API with the user's token, as any SMART app would.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from cdss.settings import Settings
from cdss.sources import SourceSettings, orthanc_auth
from fhir_facade.store.base import Store
from smart_app import dicomweb, imaging, launch, orders, risk
from smart_app.audit import Writer, store_writer
from smart_app.config import SmartSettings
from smart_app.oauth import LaunchError
from smart_app.pages import error_page
from smart_app.sessions import SessionStore
from smart_app.state import SmartState, load_key

STATIC_DIR = Path(__file__).parent / "static"


def build_state(
    settings: Settings, smart: SmartSettings, store: Store | None, audit: Writer | None = None
) -> SmartState:
    sources = SourceSettings()
    dicomweb_url = str(smart.dicomweb_url).rstrip("/") if smart.dicomweb_url else None
    auth: tuple[str, str] | None = None
    if smart.dicomweb_user and smart.dicomweb_password:
        auth = (smart.dicomweb_user, smart.dicomweb_password.get_secret_value())
    if dicomweb_url is None and sources.orthanc_url:
        dicomweb_url = str(sources.orthanc_url).rstrip("/") + "/dicom-web"
        auth = auth or orthanc_auth(sources)
    public = smart.public_url or settings.base_url
    return SmartState(
        settings=smart,
        sessions=SessionStore(smart.session_ttl_s),
        http=httpx.AsyncClient(timeout=smart.http_timeout_s),
        key=load_key(smart.key_file or settings.data_dir / "smart-key.json"),
        audit=audit or (store_writer(store) if store is not None else None),
        public_base=str(public).rstrip("/") if public else None,
        dicomweb_url=dicomweb_url,
        dicomweb_auth=auth,
    )


def _errors(app: FastAPI, *, html: bool) -> None:
    @app.exception_handler(LaunchError)
    async def on_launch_error(_request: Request, exc: LaunchError) -> Response:
        if html:
            return error_page(str(exc), exc.status)
        return JSONResponse({"error": str(exc)}, status_code=exc.status)


def create_smart(
    settings: Settings,
    store: Store | None,
    smart: SmartSettings | None = None,
    *,
    audit: Writer | None = None,
) -> tuple[FastAPI, FastAPI, SmartState]:
    """(the /smart app, the /dicom-web app, their shared state). `audit` takes each AuditEvent
    (the app's recorder, which writes them off the request path); by default they are written
    to `store` directly."""
    state = build_state(settings, smart or SmartSettings(), store, audit)
    app = FastAPI(title="cdss SMART app", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.smart = state
    app.include_router(launch.build_router(state))
    app.include_router(imaging.build_router(state))
    app.include_router(orders.build_router(state))
    app.include_router(risk.build_router(state))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _errors(app, html=True)

    @app.get("/")
    async def home(request: Request) -> Response:
        session = state.session(request)
        if session is None or not session.authorized:
            raise LaunchError("Open this app from a patient's chart in the EHR", 401)
        return RedirectResponse(launch.view_target(session.app_context), status_code=303)

    @app.get("/.well-known/jwks.json")
    async def jwks() -> JSONResponse:
        return JSONResponse(state.key.public_jwks())

    proxy = FastAPI(title="cdss DICOMweb proxy", docs_url=None, redoc_url=None, openapi_url=None)
    proxy.include_router(dicomweb.build_router(state))
    _errors(proxy, html=False)
    return app, proxy, state
