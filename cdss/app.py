"""The composition root: one ASGI app with the facade at /fhir and CDS Hooks at /cds-services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from cds_hooks.api import create_router
from cds_hooks.config import AuthConfig, CdsConfig, ClinicalOptions, TrustedClient
from cds_hooks.prefetch import FetchPolicy
from cds_hooks.services import oncology_risk
from cds_hooks.state import build_state
from cdss import __version__
from cdss.observability import metrics
from cdss.observability.health import SourceHealth, probe_targets
from cdss.observability.middleware import Observability
from cdss.settings import Settings, SettingsError
from fhir_facade.api.app import create_facade, http_error_outcome
from fhir_facade.api.state import FacadeState
from fhir_facade.audit import AuditSink, NullSink, RecorderSink
from fhir_facade.orders import runtime as orders_runtime
from fhir_facade.search.query import Limits
from fhir_facade.security import redact
from fhir_facade.security.install import secure
from fhir_facade.security.settings import (
    SecuritySettings,
    SecuritySettingsError,
    load_security_settings,
)
from fhir_facade.store.base import Store
from fhir_facade.store.factory import open_store
from models.api import LoadedModels, create_models_router
from models.imaging import runtime as imaging_runtime
from models.registry import ModelRegistry, ModelSettings
from smart_app.app import create_smart


def facade_state(settings: Settings, store: Store) -> FacadeState:
    base = str(settings.base_url).rstrip("/") + "/fhir" if settings.base_url else None
    return FacadeState(
        store=store,
        cursor_key=settings.cursor_key(),
        base_url=base,
        limits=Limits(default_count=settings.default_page_size, max_count=settings.max_page_size),
        limits_body=settings.max_body_bytes,
        max_bundle_entries=settings.max_bundle_entries,
        software_version=__version__,
    )


def cds_config(settings: Settings) -> CdsConfig:
    """The CDS Hooks service's configuration from the CDSS_CDS_* settings."""
    clients = tuple(
        TrustedClient(
            iss=c.iss,
            jwks=c.jwks,
            jku=tuple(str(u) for u in c.jku),
            tenant=c.tenant,
            fhir_servers=tuple(str(u).rstrip("/") for u in c.fhir_servers),
        )
        for c in settings.cds_clients
    )
    return CdsConfig(
        auth=AuthConfig(
            mode=settings.cds_auth,
            clients=clients,
            algorithms=tuple(settings.cds_algorithms),
            leeway_s=settings.cds_jwt_leeway_s,
            max_lifetime_s=settings.cds_jwt_max_lifetime_s,
            jwks_min_refresh_s=settings.cds_jwks_min_refresh_s,
        ),
        fetch=FetchPolicy(
            timeout_s=settings.cds_fetch_timeout_s,
            budget_s=settings.cds_fetch_budget_s,
            facade_budget_s=settings.cds_facade_budget_s,
            facade_fallback=settings.cds_facade_fallback,
        ),
        clinical=ClinicalOptions(
            duplicate_window_days=settings.cds_duplicate_window_days,
            creatinine_window_days=settings.cds_creatinine_window_days,
            imaging_summary_days=settings.cds_imaging_summary_days,
        ),
        base_url=str(settings.base_url).rstrip("/") if settings.base_url else None,
        smart_app_url=str(settings.cds_smart_app_url) if settings.cds_smart_app_url else None,
        cors_origins=tuple(settings.cds_cors_origins),
        max_body_bytes=settings.cds_max_body_bytes,
    )


class FhirBasePath:
    """Serve the facade's base at `/fhir` as well as `/fhir/`.

    Clients POST transactions to `[base]` exactly; without this the mount would answer `/fhir`
    with a redirect, which clients do not follow for POST.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/fhir":
            scope = {**scope, "path": "/fhir/", "raw_path": b"/fhir/"}
        await self.app(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    source_urls: Mapping[str, str] | None = None,
    security: SecuritySettings | None = None,
) -> FastAPI:
    """`source_urls`: health probe URL per source system (name -> URL); by default those of
    the configured CDSS_OPENEMR_URL, CDSS_SENAITE_URL and CDSS_ORTHANC_URL."""
    store = open_store(settings.effective_database_url)  # CDSS_STORE=sql|upstream
    orders_runtime.attach(store)  # off unless CDSS_ORDERS_ENABLED (issue 5)
    imaging_stop = imaging_runtime.attach(store)  # off unless CDSS_IMAGING_ENABLED (issue 7)
    cds = build_state(cds_config(settings), store, settings.effective_database_url)
    models = LoadedModels(ModelRegistry(ModelSettings().dir))  # loaded once (issue 7)
    oncology_risk.register(cds.registry, oncology_risk.load(models, cds.config.base_url))
    try:
        security = security or load_security_settings()  # CDSS_FHIR_* (fhir_facade.security)
        redact.install()  # no token or secret in any log record, whoever logs it
        audit: AuditSink = RecorderSink(cds.recorder) if security.audit else NullSink()
        secured = secure(
            create_facade(facade_state(settings, store)),
            settings=security,
            store=store,
            sink=audit,
            max_body=settings.max_body_bytes,
            bind_host=settings.host,
        )
    except (ValueError, SecuritySettingsError) as exc:
        raise SettingsError(str(exc)) from None
    # issue 8: the SMART app audits every access through the recorder, whatever CDSS_FHIR_AUDIT
    smart, dicomweb, smart_state = create_smart(
        settings, store, audit=RecorderSink(cds.recorder).submit
    )
    if source_urls is None:
        from adapters.dicomweb.settings import PacsSettings
        from cdss.sources import SourceSettings

        source_urls = probe_targets(SourceSettings(), PacsSettings())
    health = SourceHealth(source_urls)
    cds.health = health

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        health.start()
        yield
        await health.stop()
        if imaging_stop is not None:
            imaging_stop.set()  # the in-process AI worker stops with the app, not only at exit
        await secured.aclose()
        await cds.aclose()
        await smart_state.http.aclose()
        store.close()

    app = FastAPI(title="cdss", version=__version__, lifespan=lifespan)
    app.mount("/fhir", secured.app)  # the facade behind its guard (auth, scopes, audit)
    app.state.audit = audit  # AuditEvents of other areas (DICOMweb, exports) go here too
    app.add_middleware(Observability)  # inside FhirBasePath: it sees the rewritten /fhir/
    app.add_middleware(FhirBasePath)
    app.include_router(create_router(cds))
    app.include_router(create_models_router(models))  # model cards at /models
    app.state.models = models
    app.mount("/smart", smart)
    app.mount("/dicom-web", dicomweb)
    app.state.cds = cds
    app.state.health = health

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            await run_in_threadpool(store.check)
        except Exception as exc:  # readiness reports any failure, it does not raise
            return JSONResponse({"status": "unavailable", "database": str(exc)}, 503)
        # a source that is down degrades the advice (the CDS cards say so) but the app still
        # serves, so it stays in rotation: 200 with "degraded" and the source's state
        sources = health.report()
        status = "degraded" if health.down() else "ready"
        return JSONResponse({"status": status, "database": "ok", "sources": sources})

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path == "/fhir" or request.url.path.startswith("/fhir/"):
            return http_error_outcome(exc)  # a path the /fhir mount could not take
        return await http_exception_handler(request, exc)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body = await run_in_threadpool(metrics.render, store)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return app


def app_from_env() -> FastAPI:
    """The app from the CDSS_* environment: what each `cdss serve --workers N` process runs."""
    from cdss.observability.jsonlog import setup as setup_logging
    from cdss.settings import load_settings

    settings = load_settings()
    setup_logging(settings.log_level)  # a spawned worker starts with no logging set up
    return create_app(settings)
