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

from adapters.dicomweb.settings import PacsSettings
from cdss.settings import Settings
from fhir_facade.store.base import Store
from smart_app import dicomweb, imaging, launch, orders, risk
from smart_app.audit import Writer, store_writer
from smart_app.config import SmartSettings
from smart_app.oauth import LaunchError
from smart_app.pacs import upstream
from smart_app.pages import error_page
from smart_app.sessions import SessionStore
from smart_app.state import SmartState, load_key

STATIC_DIR = Path(__file__).parent / "static"


def _dicomweb(smart: SmartSettings, pacs: PacsSettings) -> tuple[str | None, httpx.Auth | None]:
    """The proxy's upstream: the site's PACS (CDSS_PACS_*, any profile and auth kind), unless
    CDSS_SMART_DICOMWEB_URL points the viewer elsewhere (with its own basic credentials, or
    else the PACS's auth)."""
    dicomweb_url, auth = upstream(pacs)
    if smart.dicomweb_url is not None:
        dicomweb_url = str(smart.dicomweb_url).rstrip("/")
    if smart.dicomweb_user and smart.dicomweb_password:
        auth = httpx.BasicAuth(smart.dicomweb_user, smart.dicomweb_password.get_secret_value())
    return dicomweb_url, auth


def build_state(
    settings: Settings,
    smart: SmartSettings,
    store: Store | None,
    audit: Writer | None = None,
    pacs: PacsSettings | None = None,
) -> SmartState:
    dicomweb_url, auth = _dicomweb(smart, pacs if pacs is not None else PacsSettings())
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
