"""Load run: a bounded, self-stopping loopback soak of the whole app (not run in CI).

`cdss serve` runs in its own process on a fresh database seeded with a synthetic record
(patients with creatinine/eGFR series and imaging studies). A fixed number of clients then send,
until --duration has passed, a fixed mix of:

* FHIR read        GET /fhir/Patient/{id}
* FHIR search      GET /fhir/Observation?patient=..&code=..&_sort=-date&_count=10
* FHIR search      GET /fhir/ImagingStudy?patient=..
* CDS order-sign   POST /cds-services/imaging-order-safety (no prefetch: the service fetches
                   from the facade, the path an EHR without prefetch takes)
* floor            GET /healthz: server and framework only, no store; its latency shows how
                   much of any drift is the machine rather than the app

It prints, per minute: requests, throughput, p50 and p99 per kind, errors; then totals and the
flatness of latency (last minute over first). Goal: 0 errors and flat latency. Every request
must answer 2xx; anything else (or a transport error or timeout) counts as an error. The server
is stopped however the run ends (Ctrl-C included).

    .venv/bin/python bench/load.py                 # 5 minutes, 8 clients
    .venv/bin/python bench/load.py --duration 60   # a shorter run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _p in (BENCH.parent, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import httpx  # noqa: E402
from _harness import percentile  # noqa: E402

from cds_hooks import examples as ex  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

MIX = (("read", 35), ("search-obs", 25), ("search-img", 10), ("cds-order-sign", 25), ("floor", 5))
KINDS = tuple(k for k, _ in MIX)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def server(db_url: str, data_dir: Path, port: int) -> Iterator[str]:
    env = {
        **os.environ,
        "CDSS_DATABASE_URL": db_url,
        "CDSS_DATA_DIR": str(data_dir),
        "CDSS_HOST": "127.0.0.1",
        "CDSS_PORT": str(port),
        "CDSS_SECRET_KEY": "load-run-cursor-key",
        "CDSS_FHIR_AUTH": "disabled",  # development setting, loopback only
        "CDSS_CDS_AUTH": "disabled",
        "CDSS_LOG_LEVEL": "WARNING",
    }
    errlog = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=errlog,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {data_dir / 'server.log'}")
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        errlog.close()


def seed(base: str, patients: int) -> list[str]:
    """Each patient: a creatinine and eGFR series (12 each over two years) and 3 studies."""
    now = datetime.now(UTC)
    ids = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for n in range(patients):
            pid = f"load-p{n}"
            resources: list[dict[str, Any]] = [ex.patient(pid, birth_date=f"19{40 + n % 50}-03-01")]
            for i in range(12):
                when = now - timedelta(days=60 * i + n % 7)
                resources.append(ex.creatinine(f"{pid}-cr{i}", pid, 0.8 + (i % 5) / 10, when))
                resources.append(ex.egfr(f"{pid}-gfr{i}", pid, 40.0 + i * 3, when))
            for s in range(3):
                resources.append(
                    ex.imaging_study(f"{pid}-st{s}", pid, now - timedelta(days=100 * s + 5))
                )
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": r,
                        "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                    }
                    for r in resources
                ],
            }
            resp = http.post("/fhir", json=bundle)
            if resp.status_code != 200:
                raise SystemExit(f"seeding failed: {resp.status_code} {resp.text[:300]}")
            ids.append(pid)
    return ids


@dataclass
class Bucket:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())


def request_for(kind: str, pid: str) -> tuple[str, str, Any]:
    if kind == "read":
        return "GET", f"/fhir/Patient/{pid}", None
    if kind == "search-obs":
        return (
            "GET",
            f"/fhir/Observation?patient={pid}&code=http://loinc.org|2160-0&_sort=-date&_count=10",
            None,
        )
    if kind == "search-img":
        return "GET", f"/fhir/ImagingStudy?patient={pid}", None
    if kind == "cds-order-sign":
        drafts = [ex.service_request(f"d-{uuid.uuid4().hex[:8]}", pid, ex.CT_CHEST_CONTRAST)]
        return (
            "POST",
            "/cds-services/imaging-order-safety",
            ex.order_request("order-sign", pid, drafts),
        )
    return "GET", "/healthz", None


async def client(
    http: httpx.AsyncClient,
    rng: random.Random,
    pids: list[str],
    started: float,
    until: float,
    bucket_s: float,
    buckets: dict[int, Bucket],
) -> None:
    kinds = [k for k, _ in MIX]
    weights = [float(w) for _, w in MIX]
    while (now := time.monotonic()) < until:
        kind = rng.choices(kinds, weights)[0]
        method, url, body = request_for(kind, rng.choice(pids))
        bucket = buckets.setdefault(int((now - started) // bucket_s), Bucket())
        t0 = time.perf_counter()
        try:
            resp = await http.request(method, url, json=body)
            ok = 200 <= resp.status_code < 300
            why = f"{kind} HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, f"{kind} {type(exc).__name__}"
        if ok:
            bucket.latencies[kind].append(time.perf_counter() - t0)
        else:
            bucket.errors[why] += 1


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1e3:7.1f}" if values else "      -"


def report(buckets: dict[int, Bucket], bucket_s: float) -> dict[str, Any]:
    header = f"{'end s':>5} {'reqs':>7} {'req/s':>7} {'errors':>6}  " + "  ".join(
        f"{k + ' p50/p99 ms':>26}" for k in KINDS
    )
    print(header)
    rows = []
    for index in sorted(buckets):
        b = buckets[index]
        cells = "  ".join(
            f"{ms(b.latencies[k], 50)} / {ms(b.latencies[k], 99):>7}      " for k in KINDS
        )
        print(
            f"{(index + 1) * bucket_s:>5.0f} {b.requests:>7} {b.requests / bucket_s:>7.1f} "
            f"{sum(b.errors.values()):>6}  {cells}"
        )
        rows.append(
            {
                "bucket": index + 1,
                "requests": b.requests,
                "throughput": round(b.requests / bucket_s, 1),
                "errors": dict(b.errors),
                "p50_ms": {
                    k: round(percentile(v, 50) * 1e3, 2) for k, v in b.latencies.items() if v
                },
                "p99_ms": {
                    k: round(percentile(v, 99) * 1e3, 2) for k, v in b.latencies.items() if v
                },
            }
        )
    return {"buckets": rows}


def flatness(rows: list[dict[str, Any]], bucket_s: float, duration: float) -> dict[str, float]:
    """Last full bucket's p50 and p99 over the first's, per kind (1.0 is flat)."""
    full = [r for r in rows if r["bucket"] * bucket_s <= duration + 1e-6] or rows
    first, last = full[0], full[-1]
    out = {}
    for q in ("p50_ms", "p99_ms"):
        for kind, v in first[q].items():
            if kind in last[q] and v > 0:
                out[f"{kind} {q[:3]}"] = round(last[q][kind] / v, 2)
    return out


async def run(base: str, pids: list[str], args: argparse.Namespace) -> dict[int, Bucket]:
    buckets: dict[int, Bucket] = {}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout, limits=limits) as http:
        started = time.monotonic()
        until = started + args.duration
        workers = [
            client(http, random.Random(args.seed + i), pids, started, until, args.bucket, buckets)
            for i in range(args.concurrency)
        ]
        await asyncio.wait_for(asyncio.gather(*workers), timeout=args.duration + args.timeout + 30)
    return buckets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--bucket", type=float, default=60.0, help="report interval, seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cdss-load-") as tmp:
        data_dir = Path(tmp)
        db_url = args.database_url or f"sqlite:///{data_dir / 'load.db'}"
        with server(db_url, data_dir, free_port()) as base:
            log(f"server at {base}; seeding {args.patients} patients...")
            pids = seed(base, args.patients)
            log(f"running {args.concurrency} clients for {args.duration:.0f} s...")
            buckets = asyncio.run(run(base, pids, args))
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
        figures = report(buckets, args.bucket)
        total = sum(b.requests for b in buckets.values())
        errors: dict[str, int] = defaultdict(int)
        for b in buckets.values():
            for why, n in b.errors.items():
                errors[why] += n
        figures["total"] = {
            "requests": total,
            "throughput": round(total / args.duration, 1),
            "errors": dict(errors),
            "flatness_last_over_first": flatness(figures["buckets"], args.bucket, args.duration),
        }
        hooks = [
            ln
            for ln in metrics.splitlines()
            if ln.startswith("cdss_cds_hook_duration_seconds_count")
        ]
        print(
            f"\ntotal {total} requests, {total / args.duration:.1f} req/s, "
            f"{sum(errors.values())} errors {dict(errors) or ''}"
        )
        print("flatness (last/first bucket):", figures["total"]["flatness_last_over_first"])
        print("server-side hook calls:", "; ".join(hooks) or "none")
        if args.json:
            print(json.dumps(figures, indent=1))
        return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
