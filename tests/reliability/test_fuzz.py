"""Schemathesis against the facade and the CDS service, in process through ASGI.

Each suite draws at least FUZZ_CASES requests (positive and negative cases from the OpenAPI in
tests/reliability/openapi.py, over every operation) and requires: no 5xx; every error an
OperationOutcome that the R4 model accepts, with a message on each issue (the CDS service's
errors use the same shape; its 401 is bare by design); every CDS 200 a conformant card
response. Runs are derandomized in CI (the same cases every time); CDSS_FUZZ_CASES and
CDSS_FUZZ_SEED widen or vary a local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from cds_hooks.conformance import check_discovery, check_response
from cdss.app import create_app
from cdss.settings import load_settings
from fhir_facade.fhir import validate
from tests.reliability.openapi import cds_openapi, facade_openapi

FUZZ_CASES = int(os.environ.get("CDSS_FUZZ_CASES", "1000"))
FUZZ_SEED = os.environ.get("CDSS_FUZZ_SEED")
TRANSPORT_KEYS = ("method", "url", "headers", "params", "json", "data", "content", "cookies")


def build(tmp_path: Path) -> FastAPI:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'fuzz.db'}",
        data_dir=tmp_path / "var",
        secret_key="test-cursor-key",
        cds_auth="disabled",
        max_body_bytes=64 * 1024,
    )
    return create_app(settings, source_urls={})


@pytest.fixture
def fuzz_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build(tmp_path), raise_server_exceptions=False) as client:
        for resource in SEED:
            assert client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        yield client


SEED: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01", "gender": "female"},
    {
        "resourceType": "ImagingStudy",
        "id": "s1",
        "status": "available",
        "subject": {"reference": "Patient/p1"},
        "started": "2026-10-01T10:00:00+02:00",
    },
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-10-01",
        "valueQuantity": {"value": 1.1, "unit": "mg/dL"},
    },
]


def closed(schema: Any) -> Any:
    """Objects that list their properties take no others in positive cases (the negative ones
    still add them): generated JSON stays small and aimed at the members the code reads."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def outcome_problems(resp: Any) -> list[str]:
    try:
        body = resp.json()
    except ValueError:
        return [f"{resp.status_code} is not JSON: {resp.text[:80]!r}"]
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return [f"{resp.status_code} is not an OperationOutcome: {str(body)[:80]}"]
    try:
        validate(body)
    except Exception as exc:
        return [f"invalid OperationOutcome: {exc}"]
    return [
        f"issue without a message: {issue}"
        for issue in body["issue"]
        if not (issue.get("diagnostics") or issue.get("details", {}).get("text"))
    ]


def problems(resp: Any, path: str, kind: str) -> list[str]:
    status = resp.status_code
    if status >= 500:
        return [f"{status}: {resp.text[:200]}"]
    if status >= 400:
        if kind == "cds" and status == 401:
            return [] if not resp.content else ["a CDS 401 says nothing"]
        return outcome_problems(resp)
    if kind == "cds" and status == 200:
        body = resp.json()
        if path == "/cds-services":
            return check_discovery(body)
        if not path.endswith("/feedback"):
            return check_response(body, require_uuid=True)
    if kind == "fhir" and status in (200, 201) and resp.content:
        body = resp.json()
        return [] if isinstance(body, dict) and "resourceType" in body else ["not a resource"]
    return []


def run_fuzz(client: TestClient, document: dict[str, Any], kind: str) -> int:
    schema = schemathesis.openapi.from_dict(closed(document))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    strategy = st.one_of(
        [
            op.as_strategy(generation_mode=mode)
            for op in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    )
    sent = 0

    @settings(
        max_examples=FUZZ_CASES,
        deadline=None,
        database=None,
        derandomize=FUZZ_SEED is None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        nonlocal sent
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        request = {k: v for k, v in kwargs.items() if k in TRANSPORT_KEYS}
        resp = client.request(**request)
        sent += 1
        found = problems(resp, case.path, kind)
        assert not found, f"{case.method} {case.formatted_path}: {found}"

    if FUZZ_SEED is not None:
        one = seed(int(FUZZ_SEED))(one)
    one()
    return sent


def test_facade_fuzz(fuzz_client: TestClient) -> None:
    capability = fuzz_client.get("/fhir/metadata").json()
    sent = run_fuzz(fuzz_client, facade_openapi(capability), "fhir")
    assert sent >= FUZZ_CASES
    # the server is still whole afterwards
    assert fuzz_client.get("/fhir/Patient/p1").status_code == 200


def test_cds_fuzz(fuzz_client: TestClient) -> None:
    discovery = fuzz_client.get("/cds-services").json()
    sent = run_fuzz(fuzz_client, cds_openapi(discovery), "cds")
    assert sent >= FUZZ_CASES
    assert fuzz_client.get("/cds-services").status_code == 200
