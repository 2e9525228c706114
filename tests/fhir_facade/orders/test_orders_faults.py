"""Faults with real processes: `cdss orders run` SIGKILLed after SENAITE created the sample but
before the outbox recorded it, then run again (one sample, not two); and the in-app worker
thread routing an order posted to the facade, as `cdss serve` runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request, Response
from fastapi.testclient import TestClient

from fhir_facade.orders import runtime
from fhir_facade.store.sql_store import SqlStore
from simulators.senaite import create_senaite_app
from tests.fhir_facade.orders.conftest import ADMIN, API, Lis, order, read, rows, settings
from tests.support.server import serve


@pytest.fixture
def stalling_lis() -> Iterator[tuple[Lis, threading.Event]]:
    """A SENAITE that creates the sample, says so, then holds the answer back for 8 s."""
    app, created, armed = create_senaite_app(), threading.Event(), threading.Event()

    @app.middleware("http")
    async def stall(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        answer = await call_next(request)
        creating = request.method == "POST" and request.url.path.endswith("/create")
        if creating and armed.is_set() and not created.is_set():
            created.set()
            await asyncio.sleep(8)
        return answer

    with (
        serve(app, ready_path=f"{API}/version") as base,
        httpx.Client(base_url=f"{base}{API}/", auth=ADMIN, timeout=10) as http,
    ):
        client = http.post(
            "create", json={"portal_type": "Client", "Name": "OPD", "ClientID": "OPD"}
        ).json()["items"][0]["uid"]
        contact = {"portal_type": "Contact", "parent_uid": client, "Firstname": "W", "Surname": "C"}
        http.post("create", json=contact).raise_for_status()
        armed.set()
        yield Lis(f"{base}/senaite", http), created


def test_killed_between_routing_and_acknowledgement_is_not_duplicated(
    fhir: TestClient,
    store: SqlStore,
    patient_id: str,
    stalling_lis: tuple[Lis, threading.Event],
    tmp_path: Path,
) -> None:
    lis, created = stalling_lis
    order_id = fhir.post("/ServiceRequest", json=order(patient_id, "718-7")).json()["id"]
    env = {
        **os.environ,
        "CDSS_DATABASE_URL": str(store.url),
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_SENAITE_URL": lis.url,
        "CDSS_ORDERS_TIMEOUT_S": "60",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "orders", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        reached = created.wait(60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert reached, "the worker never reached SENAITE"
    assert [s["ClientSampleID"] for s in lis.samples()] == [order_id]
    assert [r.state for r in rows(store)] == ["queued"]  # the acknowledgement never happened
    again = subprocess.run(
        [sys.executable, "-m", "cdss.cli", "orders", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert [s["ClientSampleID"] for s in lis.samples()] == [order_id]  # still one sample
    assert [r.state for r in rows(store)] == ["routed"]
    assert read(fhir, order_id)["meta"]["versionId"] == "2"


def test_the_in_app_worker_routes_a_posted_order(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    cfg = settings(tmp_path, lis.url, orders_enabled=True, orders_worker=True, orders_poll_s=0.05)
    stop = runtime.attach(store, cfg)
    assert stop is not None
    try:
        started = time.monotonic()
        order_id = fhir.post("/ServiceRequest", json=order(patient_id, "6690-2")).json()["id"]
        while not lis.samples() and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert [s["ClientSampleID"] for s in lis.samples()] == [order_id]
        while rows(store)[0].state != "routed" and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert rows(store)[0].state == "routed"
    finally:
        stop.set()


def test_attach_is_off_by_default(store: SqlStore, tmp_path: Path) -> None:
    assert runtime.attach(store, settings(tmp_path)) is None
