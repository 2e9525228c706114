"""Benchmark of order communication: orders/s from POST to routed, with routing latency.

Processes as deployed: `cdss serve` (SQLite file, CDSS_ORDERS_ENABLED), the routing worker as
`cdss orders run` (default) or as the app's own thread (`--worker thread`, CDSS_ORDERS_WORKER),
`cdss simulate senaite`, and this client; the worklists folder is on local disk (what Orthanc's
plugin serves). An httpx client POSTs signed orders one at a time, alternating lab (LOINC ->
SENAITE sample) and imaging (CT orderable -> worklist file), while the worker drains the outbox.

Figures: POST rate (orders accepted/s), end-to-end rate (N / time from the first POST to the last
order routed), and p50/p99 of routing latency (outbox row created -> routed, from the store's own
timestamps). Floor: the facade's own create of the same ServiceRequests as drafts (not routed),
measured in the same run with the same client. Loss check: every order routed, one SENAITE sample
per lab order, one worklist file per imaging order. Goal: >= 50 orders/s sustained, no loss.

    .venv/bin/python bench/orders.py [--orders 400]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.base import MRN_SYSTEM  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

SENAITE_API = "/senaite/@@API/senaite/v1"


def _order(pid: str, i: int, status: str = "active") -> dict[str, object]:
    code = "2160-0" if i % 2 == 0 else "29252-4"
    return {
        "resourceType": "ServiceRequest",
        "status": status,
        "intent": "order",
        "identifier": [{"system": "urn:bench:placer", "value": f"{status}-{i}"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "requester": {"display": "Dr Bench"},
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _process(
    args: list[str], env: dict[str, str], ready: str | None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "cdss.cli", *args], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while ready is not None and time.monotonic() < deadline:
            try:
                if httpx.get(ready, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            if ready is not None:
                raise RuntimeError(f"{args[0]} did not start")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def _outbox(db: Path) -> list[tuple[int, int, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT created, updated, state FROM order_outbox").fetchall()
    return [(int(c), int(u), str(s)) for c, u, s in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument(
        "--worker",
        choices=("process", "thread"),
        default="process",
        help="`cdss orders run` beside `cdss serve`, or the worker thread inside it",
    )
    options = parser.parse_args()
    n = options.orders
    tmp = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    db = tmp / "facade.db"
    lis_port, app_port = free_port(), free_port()
    lis = f"http://127.0.0.1:{lis_port}"
    env = {
        **os.environ,
        "CDSS_DATABASE_URL": f"sqlite:///{db}",
        "CDSS_DATA_DIR": str(tmp / "var"),
        "CDSS_LOG_LEVEL": "WARNING",
        "CDSS_SENAITE_URL": f"{lis}/senaite",
        "CDSS_ORDERS_ENABLED": "true",
        "CDSS_FHIR_AUTH": "disabled",  # a loopback bench of routing, not of token checks
        "CDSS_ORDERS_WORKER": "true" if options.worker == "thread" else "false",
        "CDSS_ORDERS_WORKLISTS_DIR": str(tmp / "worklists"),
        "CDSS_ORDERS_POLL_S": "0.01",
    }
    sim = ["simulate", "senaite", "--port", str(lis_port)]
    serve = ["serve", "--host", "127.0.0.1", "--port", str(app_port)]
    with (
        _process(sim, env, f"{lis}{SENAITE_API}/version"),
        httpx.Client(base_url=f"{lis}{SENAITE_API}/", auth=("admin", "admin")) as lims,
    ):
        made = lims.post("create", json={"portal_type": "Client", "Name": "O", "ClientID": "OPD"})
        contact = {"portal_type": "Contact", "Firstname": "W", "Surname": "C"}
        lims.post("create", json={**contact, "parent_uid": made.json()["items"][0]["uid"]})
        worker: AbstractContextManager[object] = (
            _process(["orders", "run"], env, None) if options.worker == "process" else nullcontext()
        )
        with (
            _process(serve, env, f"http://127.0.0.1:{app_port}/healthz"),
            worker,
            httpx.Client(base_url=f"http://127.0.0.1:{app_port}/fhir", timeout=30) as http,
        ):
            mrn = [{"system": MRN_SYSTEM, "value": "B1"}]
            pid = http.post("/Patient", json={"resourceType": "Patient", "identifier": mrn})
            pid_ = pid.json()["id"]
            started = time.perf_counter()
            for i in range(n):  # floor: the facade's plain create (drafts are not routed)
                assert http.post("/ServiceRequest", json=_order(pid_, i, "draft")).is_success
            floor = n / (time.perf_counter() - started)
            started = time.perf_counter()
            for i in range(n):
                assert http.post("/ServiceRequest", json=_order(pid_, i)).status_code == 201
            posted = time.perf_counter() - started
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if sum(s == "routed" for _, _, s in _outbox(db)) >= n:
                    break
                time.sleep(0.02)
            end_to_end = time.perf_counter() - started
        samples = lims.get("AnalysisRequest", params={"limit": 1}).json()["count"]
    stamps = _outbox(db)
    files = len(list((tmp / "worklists").glob("*.wl")))
    latencies = [(u - c) / 1000 for c, u, s in stamps if s == "routed"]
    labs = n // 2 + n % 2
    where = "`cdss orders run` process" if options.worker == "process" else "`cdss serve` thread"
    print(f"orders: {n} ({labs} lab, {n // 2} imaging); SQLite; worker: {where}")
    print(f"floor, facade create (drafts):   {floor:8.1f} orders/s")
    ratio = n / posted / floor
    print(f"POST signed orders (accepted):   {n / posted:8.1f} orders/s  ({ratio:.2f}x floor)")
    print(f"POST -> all routed (end to end): {n / end_to_end:8.1f} orders/s  (goal >= 50)")
    if latencies:
        p50, p99 = statistics.median(latencies), _pct(latencies, 0.99)
        print(f"routing latency (queued -> routed): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    lost, dup = n - len(latencies), (samples - labs) + (files - n // 2)
    print(f"routed {len(latencies)}/{n}; SENAITE samples {samples}; worklist files {files}; "
          f"lost {lost}; duplicated {dup}")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    if lost or dup:
        sys.exit(1)


if __name__ == "__main__":
    main()
