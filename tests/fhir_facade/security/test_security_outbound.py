"""Outbound requests only to configured hosts: no SSRF through a token's `iss`/`jku`, a CDS
client's `fhirServer`, or a redirect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.testclient import TestClient

from cds_hooks.config import AuthConfig, CdsConfig, TrustedClient
from cds_hooks.state import build_state
from cdss.outbound import OutboundGuard, OutboundRefused, guarded_client, origin
from fhir_facade.store.sql_store import SqlStore
from tests.fhir_facade.security.conftest import Issuer
from tests.support.server import serve


class Trap:
    """A loopback server that records every request it gets (it must get none)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.app = FastAPI()

        @self.app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @self.app.api_route("/{rest:path}", methods=["GET", "POST"])
        def anything(rest: str, request: Request) -> dict[str, Any]:
            self.hits.append(rest)
            return {"keys": []}


@pytest.fixture(scope="module")
def trap() -> Iterator[tuple[str, Trap]]:
    t = Trap()
    with serve(t.app) as base:
        yield base, t


def test_origins() -> None:
    guard = OutboundGuard.from_urls(["https://ehr.example.org/fhir", "http://127.0.0.1:8081/x"])
    assert guard.allows("https://EHR.example.org:443/other")
    assert guard.allows("http://127.0.0.1:8081/jwks")
    for refused in (
        "http://ehr.example.org/fhir",  # scheme
        "https://ehr.example.org:8443/fhir",  # port
        "https://ehr.example.org.evil.com/fhir",
        "https://user:pw@ehr.example.org/fhir",
        "http://127.0.0.1:8082/x",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "gopher://127.0.0.1:8081/",
        "not a url",
    ):
        assert not guard.allows(refused), refused
    assert origin("https://a.example") == "https://a.example:443"


async def test_guarded_client_refuses_hosts_and_redirects(trap: tuple[str, Trap]) -> None:
    base, t = trap
    bouncer = FastAPI()

    @bouncer.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @bouncer.get("/jump")
    def jump() -> RedirectResponse:
        return RedirectResponse(f"{base}/stolen", status_code=302)

    with serve(bouncer) as allowed:
        async with guarded_client(OutboundGuard.from_urls([allowed])) as http:
            resp = await http.get(f"{allowed}/jump")
            assert resp.status_code == 302  # not followed
            with pytest.raises(OutboundRefused):
                await http.get(f"{base}/direct")
            with pytest.raises(OutboundRefused):
                await http.get(resp.headers["location"])
    assert t.hits == []


def test_token_iss_and_jku_are_never_fetched(
    secure_client: TestClient, issuer: Issuer, trap: tuple[str, Trap]
) -> None:
    base, t = trap
    for token in (
        issuer.mint(iss=base),  # an issuer that is not configured: not discovered
        issuer.mint(iss=base, jku=f"{base}/jwks"),
        _with_header(issuer, jku=f"{base}/jwks", kid="other"),
        _with_header(issuer, x5u=f"{base}/cert", kid="other"),
    ):
        resp = secure_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
    assert t.hits == []


def _with_header(issuer: Issuer, **header: Any) -> str:
    from joserfc import jwt

    now = int(time.time())
    claims = {
        "iss": "https://auth.example.org",
        "aud": "https://cdss.example.org/fhir",
        "exp": now + 60,
    }
    return jwt.encode({"alg": "RS256", **header}, claims, issuer.key)


async def test_cds_http_client_reaches_only_configured_servers(
    tmp_path: Path, trap: tuple[str, Trap]
) -> None:
    base, t = trap
    client = TrustedClient(
        iss="https://ehr.example",
        jku=("https://ehr.example/jwks",),
        fhir_servers=("https://ehr.example/fhir",),
    )
    config = CdsConfig(auth=AuthConfig(clients=(client,)))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = SqlStore(url)
    state = build_state(config, store, url)
    try:
        with pytest.raises(httpx.HTTPError):
            await state.http.get(f"{base}/fhir/Patient")  # a fhirServer nobody configured
        assert t.hits == []
        assert state.http.follow_redirects is False
    finally:
        await state.aclose()
        store.close()
