"""Shared fixtures: stores on SQLite and on a real PostgreSQL, the app, and a live server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cdss.app import create_app
from cdss.settings import Settings, load_settings
from tests.support import postgres
from tests.support.server import serve

_db_names = itertools.count()

# The facade requires bearer tokens by default (CDSS_FHIR_AUTH=required). The suite's tests call
# it without tokens, so the suite runs it as development does: no authentication (loopback only)
# and no facade AuditEvents (they would show up in the tests' searches and histories). The tests
# of fhir_facade/security and fhir_facade/audit pass SecuritySettings that turn both on.
os.environ.setdefault("CDSS_FHIR_AUTH", "disabled")
os.environ.setdefault("CDSS_FHIR_AUDIT", "false")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """One PostgreSQL cluster for the whole run; each test gets its own database."""
    reason = postgres.available()
    if reason is not None:
        pytest.fail(f"PostgreSQL is required for the postgres tests: {reason}")
    with postgres.cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: str = request.getfixturevalue("pg_server")
    return postgres.create_database(server, f"t{next(_db_names)}")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        secret_key="test-cursor-key",
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def live_base(app: FastAPI) -> Iterator[str]:
    """Base URL of the app served by uvicorn on loopback (the facade is at /fhir)."""
    with serve(app) as base:
        yield base
