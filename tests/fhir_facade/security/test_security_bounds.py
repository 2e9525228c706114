"""Inputs are bounded before any work is done, and every refusal is an OperationOutcome:
headers, query string, parameter count, chained depth, _include count, body size, Bundle
entries and _count."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.fhir_facade.security.conftest import Issuer, observation


@pytest.fixture
def bounded(make_secure_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    app = make_secure_app(
        max_includes=2, max_query_params=10, max_header_bytes=4096, max_query_bytes=1024
    )
    with TestClient(app) as client:
        yield client


def _outcome(resp: httpx.Response, status: int, text: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    assert text in body["issue"][0]["diagnostics"]


def test_headers_and_query_string(bounded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers()
    _outcome(bounded.get("/fhir/Patient", headers=h | {"X-Pad": "x" * 5000}), 431, "headers")
    _outcome(bounded.get("/fhir/Patient?name=" + "a" * 1100, headers=h), 414, "query string")
    # before authentication too: an anonymous flood costs nothing
    _outcome(bounded.get("/fhir/Patient", headers={"X-Pad": "x" * 5000}), 431, "headers")


def test_search_complexity(bounded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers()
    many = "&".join(f"name=a{i}" for i in range(11))
    _outcome(bounded.get(f"/fhir/Patient?{many}", headers=h), 400, "more than 10 search parameters")
    includes = (
        "_include=Observation:patient&_include=Observation:encounter&_include=Observation:subject"
    )
    _outcome(bounded.get(f"/fhir/Observation?{includes}", headers=h), 400, "_include/_revinclude")
    _outcome(
        bounded.get("/fhir/Observation?subject:Patient.organization.name=x", headers=h),
        400,
        "chains deeper than 1",
    )
    _outcome(
        bounded.get("/fhir/Patient?_has:Observation:patient:_has:X:y:z=1", headers=h), 400, "chains"
    )
    # the same bounds hold for _search bodies and for searches inside a batch
    form = {"name": [f"a{i}" for i in range(11)]}
    resp = bounded.post("/fhir/Patient/_search", data=form, headers=h)
    _outcome(resp, 400, "more than 10")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient?{many}"}}],
    }
    _outcome(bounded.post("/fhir/", json=batch, headers=h), 400, "more than 10")


def test_body_bundle_and_page_size(bounded: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("system/*.cruds")
    big = observation(None, "p1") | {"note": [{"text": "x" * 70_000}]}
    _outcome(bounded.post("/fhir/Observation", json=big, headers=h), 413, "byte limit")
    entries = [
        {"resource": observation(None, "p1"), "request": {"method": "POST", "url": "Observation"}}
    ] * 21
    resp = bounded.post(
        "/fhir/", json={"resourceType": "Bundle", "type": "batch", "entry": entries}, headers=h
    )
    assert resp.status_code in (400, 413) and resp.json()["resourceType"] == "OperationOutcome"
    for _ in range(3):
        bounded.post("/fhir/Observation", json=observation(None, "p1"), headers=h)
    page = bounded.get("/fhir/Observation?_count=100000", headers=h).json()
    assert page["resourceType"] == "Bundle" and len(page["entry"]) == 3
