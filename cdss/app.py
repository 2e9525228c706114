"""The composition root: one ASGI app with the facade at /fhir (and, later, the other parts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cdss import __version__
from cdss.settings import Settings
from fhir_facade.api.app import create_facade
from fhir_facade.api.state import FacadeState
from fhir_facade.search.query import Limits
from fhir_facade.store.sql_store import SqlStore


def facade_state(settings: Settings, store: SqlStore) -> FacadeState:
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


def create_app(settings: Settings) -> FastAPI:
    store = SqlStore(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="cdss", version=__version__, lifespan=lifespan)
    app.mount("/fhir", create_facade(facade_state(settings, store)))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            await run_in_threadpool(store.check)
        except Exception as exc:  # readiness reports any failure, it does not raise
            return JSONResponse({"status": "unavailable", "database": str(exc)}, 503)
        return JSONResponse({"status": "ready"})

    return app
