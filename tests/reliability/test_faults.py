"""Faults: a source system going away mid-run, and the server killed during a transaction.

Sources are the real thing on loopback: the OpenEMR and SENAITE simulators (stopped and started
again on the same port, their state kept) and a real Orthanc (frozen with SIGSTOP: a hung PACS,
harsher than a refused connection). The server of the kill test is `cdss serve` in its own
process, killed with SIGKILL while clients post transactions.

Already covered elsewhere and not repeated here: a sync killed mid-batch resumes without loss or
duplicates (tests/integration/test_sync_e2e.py), and the order queue delivers once the LIS is
back (tests/fhir_facade/orders/test_orders_lab.py, test_lis_down_when_signed_then_delivered_...).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_hooks import examples as ex
from cdss.app import create_app
from cdss.observability.health import probe_targets
from cdss.settings import load_settings
from cdss.sources import SourceSettings, build_sources
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.store.tables import resources
from fhir_facade.sync.runner import Runner
from simulators.cohort.model import generate
from simulators.cohort.seed import Targets, seed
from simulators.cohort.senaite_writer import SenaiteWriter
from simulators.openemr.app import create_openemr_app
from simulators.senaite import create_senaite_app
from tests.support import orthanc as orthanc_support
from tests.support.postgres import free_port
from tests.support.server import serve

INDEX = date(2025, 6, 1)
BUDGET_S = 3.0  # the CDS fetch budget (2 s facade budget) plus a margin for a loaded machine
LABELS = {"openemr": "OpenEMR", "senaite": "SENAITE", "orthanc": "Orthanc"}


@dataclass
class Restartable:
    """A simulator served on a fixed port that can be stopped and served again, state kept."""

    app: FastAPI
    ready_path: str
    port: int = field(default_factory=free_port)
    _stack: ExitStack | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._stack = ExitStack()
        self._stack.enter_context(serve(self.app, ready_path=self.ready_path, port=self.port))

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@dataclass
class Sources:
    emr: Restartable
    lis: Restartable
    pacs: orthanc_support.OrthancServer
    settings: SourceSettings
    db_url: str
    patient_id: str


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sources]:
    reason = orthanc_support.available()
    if reason:
        pytest.fail(f"Orthanc is required: {reason}")
    tmp = tmp_path_factory.mktemp("faults")
    port = free_port()
    emr = Restartable(
        create_openemr_app(public_base=f"http://127.0.0.1:{port}"),
        "/apis/default/fhir/metadata",
        port,
    )
    lis = Restartable(create_senaite_app(), "/senaite/@@API/senaite/v1/version")
    emr.start()
    lis.start()
    try:
        with orthanc_support.orthanc(dicom_server=False) as pacs:
            targets = Targets(
                openemr_url=emr.base,
                senaite_url=f"{lis.base}/senaite",
                orthanc_url=pacs.url,
                orthanc_auth=pacs.auth,
            )
            seed(4, 4, targets, tmp / "cohort", index_date=INDEX)  # patient 4 has a CT
            orthanc_support.wait_for_changes(pacs, "StableStudy", count=1, since=0, timeout=30)
            settings = SourceSettings(
                data_dir=tmp / "var",
                openemr_url=emr.base,
                senaite_url=f"{lis.base}/senaite",
                orthanc_url=pacs.url,
                orthanc_user=pacs.auth[0],
                orthanc_password=pacs.auth[1],
            )
            db_url = f"sqlite:///{tmp / 'facade.db'}"
            store = SqlStore(db_url)
            Runner(store, build_sources(settings)).run_once()
            store.close()
            yield Sources(emr, lis, pacs, settings, db_url, _a_patient(db_url))
    finally:
        lis.stop()
        emr.stop()


def _a_patient(db_url: str) -> str:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        pid = conn.execute(
            select(resources.c.res_id).where(resources.c.res_type == "Patient").limit(1)
        ).scalar_one()
    engine.dispose()
    return str(pid)


def _order_sign(client: TestClient, pid: str) -> tuple[float, list[dict[str, Any]]]:
    body = ex.order_request(
        "order-sign", pid, [ex.service_request("draft-1", pid, ex.CT_CHEST_CONTRAST)]
    )
    started = time.monotonic()
    resp = client.post("/cds-services/imaging-order-safety", json=body)
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    return elapsed, list(resp.json()["cards"])


def _unavailable(cards: list[dict[str, Any]]) -> list[str]:
    return [
        c["summary"]
        for c in cards
        if c["source"].get("topic", {}).get("code") == "source-unavailable"
    ]


def _clinical(cards: list[dict[str, Any]]) -> list[str]:
    return sorted(c["summary"] for c in cards if c["summary"] not in _unavailable(cards))


def _wait_ready(client: TestClient, name: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.get("/readyz").json()["sources"][name]["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"/readyz never showed {name} {status}")


def test_cds_answers_without_a_stopped_source_and_sync_resumes(
    sources: Sources, tmp_path: Path
) -> None:
    settings = load_settings(
        database_url=sources.db_url,
        data_dir=tmp_path / "var",
        secret_key="test-cursor-key",
        cds_auth="disabled",
    )
    app = create_app(settings, source_urls=probe_targets(sources.settings))
    app.state.health.interval_s = 0.1
    store = SqlStore(sources.db_url)
    runner = Runner(store, build_sources(sources.settings), fail_max=100)
    pid = sources.patient_id
    with TestClient(app) as client:
        for name in LABELS:
            _wait_ready(client, name, "up")
        _, baseline = _order_sign(client, pid)
        assert _unavailable(baseline) == []

        for name, stop, start in (
            ("senaite", sources.lis.stop, sources.lis.start),
            ("openemr", sources.emr.stop, sources.emr.start),
            (
                "orthanc",
                lambda: os.kill(sources.pacs.pid, signal.SIGSTOP),
                lambda: os.kill(sources.pacs.pid, signal.SIGCONT),
            ),
        ):
            stop()
            try:
                _wait_ready(client, name, "down")
                assert client.get("/readyz").json()["status"] == "degraded"
                elapsed, cards = _order_sign(client, pid)
                assert elapsed < BUDGET_S
                (missing,) = _unavailable(cards)
                assert LABELS[name] in missing
                assert _clinical(cards) == _clinical(baseline)  # the cards it can make
                if name != "orthanc":  # a frozen PACS would hold the sync for its timeout
                    runner.run_once()
                    assert name in runner.failures
            finally:
                start()
            _wait_ready(client, name, "up")
            reports = {r.source for r in runner.run_once()}
            assert name in reports and name not in runner.failures  # the sync resumed
            _, cards = _order_sign(client, pid)
            assert _unavailable(cards) == []

        # what reached the LIS after its outage is synced on the next pass
        before = len(_rows(sources.db_url, "Observation"))
        extra = generate(1, 99, INDEX)[0]
        extra.mrn = _mrn(sources.db_url, pid)
        writer = SenaiteWriter(f"{sources.lis.base}/senaite")
        writer.write(extra)
        writer.close()
        runner.run_once()
        assert len(_rows(sources.db_url, "Observation")) > before
    store.close()


def _rows(db_url: str, rtype: str) -> list[dict[str, Any]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(resources.c.content).where(
                    resources.c.res_type == rtype, resources.c.deleted.is_(False)
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return [orjson.loads(c) for c in rows if c]


def _mrn(db_url: str, pid: str) -> str:
    patient = next(p for p in _rows(db_url, "Patient") if p["id"] == pid)
    return str(patient["identifier"][0]["value"])


# -- kill -9 during transaction ingest ------------------------------------------------------

BUNDLES, PER_BUNDLE = 24, 20
FAULT_SYSTEM = "urn:cdss:test:fault"


def _bundle(k: int) -> dict[str, Any]:
    """One transaction: a patient and observations pointing at it, each created only if its
    identifier is new (the way a client retries safely after a lost answer)."""
    patient_url = f"urn:uuid:00000000-0000-4000-8000-{k:012d}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": FAULT_SYSTEM, "value": f"b{k}-p"}],
                "gender": "female",
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={FAULT_SYSTEM}|b{k}-p",
            },
        }
    ]
    for i in range(PER_BUNDLE - 1):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "identifier": [{"system": FAULT_SYSTEM, "value": f"b{k}-{i}"}],
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
                    "subject": {"reference": patient_url},
                    "valueQuantity": {"value": 1.0 + i / 100, "unit": "mg/dL"},
                },
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": f"identifier={FAULT_SYSTEM}|b{k}-{i}",
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _per_bundle(db_url: str) -> Counter[str]:
    """How many resources of each bundle are stored, and a check that no identifier repeats."""
    seen: Counter[str] = Counter()
    for rtype in ("Patient", "Observation"):
        for resource in _rows(db_url, rtype):
            for ident in resource.get("identifier", []):
                if ident.get("system") == FAULT_SYSTEM:
                    seen[ident["value"]] += 1
    duplicated = [v for v, n in seen.items() if n > 1]
    assert not duplicated, f"stored twice: {duplicated[:5]}"
    return Counter(v.split("-")[0] for v in seen)


def _start_server(db_url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CDSS_DATABASE_URL": db_url,
        "CDSS_DATA_DIR": str(tmp / "var"),
        "CDSS_HOST": "127.0.0.1",
        "CDSS_PORT": str(port),
        "CDSS_SECRET_KEY": "test-cursor-key",
        "CDSS_FHIR_AUTH": "disabled",
        "CDSS_CDS_AUTH": "disabled",
        "CDSS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / f"server-{time.monotonic_ns()}.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
    proc.kill()
    raise AssertionError("the server did not start within 60 s")


def _post_all(base: str, todo: list[int], acked: set[int], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for k in todo:
            if stop.is_set():
                return
            try:
                resp = http.post("/fhir", json=_bundle(k))
            except httpx.HTTPError:
                return  # the server is gone: this bundle's fate is unknown to the client
            if resp.status_code == 200:
                acked.add(k)


def test_kill_9_during_transaction_ingest_loses_and_duplicates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_server(database_url, port, tmp_path)
    acked: set[int] = set()
    stop = threading.Event()
    lanes = [list(range(i, BUNDLES, 4)) for i in range(4)]
    threads = [threading.Thread(target=_post_all, args=(base, lane, acked, stop)) for lane in lanes]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-flight: other transactions are in progress
        proc.wait(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if proc.poll() is None:
            proc.kill()
    assert 4 <= len(acked) < BUNDLES, "the kill did not land while transactions were running"

    stored = _per_bundle(database_url)
    partial = {k: n for k, n in stored.items() if n != PER_BUNDLE}
    assert not partial, f"partial transactions after kill -9: {partial}"
    assert {f"b{k}" for k in acked} <= set(stored), "an acknowledged transaction was lost"

    proc = _start_server(database_url, port, tmp_path)  # restart; the client resends the rest
    try:
        resend = [k for k in range(BUNDLES) if k not in acked]
        with httpx.Client(base_url=base, timeout=60) as http:
            for k in resend:
                assert http.post("/fhir", json=_bundle(k)).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    stored = _per_bundle(database_url)
    assert stored == Counter({f"b{k}": PER_BUNDLE for k in range(BUNDLES)})
