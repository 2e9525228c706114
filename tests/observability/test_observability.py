"""Operations endpoints and signals: request ids, JSON logs, /metrics, /readyz with sources.

Everything runs against the real app on SQLite; sources are a real HTTP server on loopback
(up) and a closed port (down).
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cdss.app import create_app
from cdss.observability.jsonlog import JsonFormatter
from cdss.observability.metrics import MODEL_INFERENCE_SECONDS
from cdss.settings import load_settings
from fhir_facade.orders import outbox
from fhir_facade.orders.intake import connection
from tests.support.postgres import free_port
from tests.support.server import serve

SECRET_TOKEN = "eyJhbGciOiJub25lIn0.c2VjcmV0LXRva2VuLXZhbHVl.sig"


def build(tmp_path: Path, sources: dict[str, str] | None = None) -> FastAPI:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'obs.db'}",
        data_dir=tmp_path / "var",
        secret_key="test-cursor-key",
        cds_auth="disabled",
    )
    return create_app(settings, source_urls=sources or {})


@pytest.fixture
def obs_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build(tmp_path)) as client:
        yield client


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every log record of the test, formatted as the server formats them, parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Doe"}]}


def summary_call(pid: str, instance: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": instance,
        "context": {"userId": "Practitioner/1", "patientId": pid},
    }


def test_request_id_is_echoed_or_generated(obs_client: TestClient) -> None:
    given = obs_client.get("/healthz", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    fresh = obs_client.get("/fhir/metadata")
    assert len(fresh.headers["x-request-id"]) == 32
    assert fresh.headers["x-request-id"] != obs_client.get("/healthz").headers["x-request-id"]
    # a value that could inject into logs or headers is replaced, not echoed
    odd = obs_client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 80})
    assert odd.headers["x-request-id"] != "a b\tc" + "x" * 80


def test_json_logs_carry_request_and_hook_ids_without_secrets(
    obs_client: TestClient, json_log: Callable[[], list[dict[str, Any]]]
) -> None:
    obs_client.put("/fhir/Patient/p-log", json=patient("p-log"))
    instance = str(uuid.uuid4())
    resp = obs_client.post(
        "/cds-services/patient-imaging-summary",
        json=summary_call("p-log", instance),
        headers={"X-Request-ID": "req-hook-1", "Authorization": f"Bearer {SECRET_TOKEN}"},
    )
    assert resp.status_code == 200
    obs_client.get("/fhir/Patient", params={"family": "Doe"}, headers={"X-Request-ID": "req-2"})
    lines = json_log()
    access = [ln for ln in lines if ln["logger"] == "cdss.access"]
    hook = next(ln for ln in access if ln["request_id"] == "req-hook-1")
    assert hook["hookInstance"] == instance
    assert hook["route"] == "/cds-services/{service_id}"
    assert hook["status"] == 200 and hook["duration_ms"] >= 0
    assert {"ts", "level", "logger", "msg"} <= hook.keys()
    search = next(ln for ln in access if ln["request_id"] == "req-2")
    assert search["route"] == "/fhir/{rtype}" and "hookInstance" not in search
    raw = orjson.dumps([ln for ln in lines if ln["logger"] != "httpx"]).decode()  # test client
    assert SECRET_TOKEN not in raw and "Doe" not in raw and "p-log" not in raw


def test_metrics_label_routes_by_template_and_services_by_name(obs_client: TestClient) -> None:
    obs_client.put("/fhir/Patient/p-secret-id", json=patient("p-secret-id"))
    obs_client.get("/fhir/Patient/p-secret-id")
    obs_client.post(
        "/cds-services/patient-imaging-summary",
        json=summary_call("p-secret-id", str(uuid.uuid4())),
    )
    obs_client.post("/cds-services/no-such-service-xyz", json={})
    MODEL_INFERENCE_SECONDS.labels(model="test-model").observe(0.02)
    text = obs_client.get("/metrics").text
    assert "p-secret-id" not in text and "no-such-service-xyz" not in text
    routes = {
        (labels["method"], labels["route"], labels["status"])
        for labels, _ in samples(text, "cdss_http_request_duration_seconds_count")
    }
    assert ("PUT", "/fhir/{rtype}/{id}", "201") in routes
    assert ("GET", "/fhir/{rtype}/{id}", "200") in routes
    hooks = {
        (labels["service"], labels["outcome"]): value
        for labels, value in samples(text, "cdss_cds_hook_duration_seconds_count")
    }
    assert hooks[("patient-imaging-summary", "ok")] >= 1
    assert hooks[("unknown", "404")] >= 1
    models = samples(text, "cdss_model_inference_seconds_count")
    assert any(labels["model"] == "test-model" and value >= 1 for labels, value in models)


def test_metrics_report_sync_lag_and_order_queue_depth(tmp_path: Path) -> None:
    app = build(tmp_path)
    with TestClient(app) as client:
        text = client.get("/metrics").text
        assert samples(text, "cdss_sync_lag_seconds") == []
        store = app.state.cds.store
        with store.unit() as unit:
            unit.set_state("sync:senaite:last_report", "{}")
            for n in range(3):
                outbox.enqueue(connection(unit), f"o{n}", "lab", f"k{n}", "{}")
        time.sleep(1.1)
        text = client.get("/metrics").text
    lag = {labels["source"]: value for labels, value in samples(text, "cdss_sync_lag_seconds")}
    assert 1.0 <= lag["senaite"] < 60
    depth = {labels["state"]: value for labels, value in samples(text, "cdss_order_queue_depth")}
    assert depth["queued"] == 3 and depth["routed"] == 0


def test_readyz_reports_each_source(tmp_path: Path) -> None:
    up = FastAPI()

    @up.get("/system")
    async def system() -> dict[str, str]:
        return {"Name": "fake"}

    with serve(up, ready_path="/system") as up_base:
        sources = {"orthanc": f"{up_base}/system", "senaite": f"http://127.0.0.1:{free_port()}/"}
        with TestClient(build(tmp_path, sources)) as client:
            deadline = time.monotonic() + 10
            body = client.get("/readyz").json()
            while "unknown" in str(body) and time.monotonic() < deadline:
                time.sleep(0.05)
                body = client.get("/readyz").json()
            resp = client.get("/readyz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["sources"]["orthanc"]["status"] == "up"
    assert body["sources"]["senaite"]["status"] == "down"


def test_readyz_without_sources_is_ready(obs_client: TestClient) -> None:
    assert obs_client.get("/readyz").json() == {"status": "ready", "database": "ok", "sources": {}}
    assert obs_client.get("/healthz").json() == {"status": "ok"}


def test_metrics_of_several_workers_are_merged(tmp_path: Path) -> None:
    """`cdss serve --workers N` with PROMETHEUS_MULTIPROC_DIR: /metrics sums every process."""
    import subprocess
    import sys

    shared = tmp_path / "prom"
    shared.mkdir()
    script = (
        "from cdss.observability.metrics import HOOK_SECONDS, render\n"
        "HOOK_SECONDS.labels('patient-imaging-summary', 'patient-view', 'ok').observe(0.01)\n"
        "print(render(None).decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    counts = samples(outputs[-1], "cdss_cds_hook_duration_seconds_count")
    assert [value for _, value in counts] == [2.0]  # both processes' observations
