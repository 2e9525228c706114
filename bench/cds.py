"""Benchmark of the CDS Hooks service against a raw ASGI floor measured in the same run.

Workload: order-sign to imaging-order-safety for one patient with 50 Observations (eGFR and
creatinine over two years), 10 ImagingStudies, 5 ServiceRequests, an allergy and a medication,
with 3 draft orders (CT chest, CT abdomen-pelvis and MR brain, all with contrast), each call
carrying a fresh ES384 JWT (verified by the service: signature, aud, jti replay cache).

1. complete prefetch: every template key sent in the request (about 70 resources).
2. fallback fetch: no prefetch; the service fetches every key from the facade in process.

Floor: a bare ASGI route in the same uvicorn process that reads the same body, parses it with
orjson and returns a static card; no framework, no auth, no rules. Floor and system rounds
alternate (this kind of machine drifts from minute to minute); latencies are pooled per kind.
Concurrency 8 over real HTTP (httpx, keep-alive) from this process; the server is a subprocess.
Goals: complete prefetch p50 <= 3x the floor and p99 <= 100 ms; fallback p99 <= 500 ms.
Progress goes to stderr, the JSON figures to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _p in (BENCH.parent, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import httpx  # noqa: E402
import orjson  # noqa: E402
from _harness import Log, median, percentile  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402

from cds_hooks import examples as ex  # noqa: E402
from cds_hooks.client import sign_client_jwt  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402

ISS = "https://bench-ehr.example/"
SERVICE = "imaging-order-safety"
PID = "bench-p1"
STATIC = orjson.dumps(
    {
        "cards": [
            {
                "uuid": "8a7e3a52-96a2-4b3c-9a55-4ad4a2b1c111",
                "summary": "Static card",
                "indicator": "info",
                "source": {"label": "floor"},
            }
        ]
    }
)


# -- server side -------------------------------------------------------------------------------


async def floor(_scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, parse it with orjson, answer a static card."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    orjson.loads(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(STATIC))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": STATIC})


def serve_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cds.py serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import uvicorn

    from cdss.app import create_app
    from cdss.settings import load_settings

    # the facade's own cost is measured, as a development server on loopback serves it: no
    # bearer tokens and no AuditEvent per request (CDSS_FHIR_*, fhir_facade/security)
    os.environ.setdefault("CDSS_FHIR_AUTH", "disabled")
    os.environ.setdefault("CDSS_FHIR_AUDIT", "false")
    data = Path(args.data_dir)
    settings = load_settings(
        database_url=f"sqlite:///{data / 'bench.db'}",
        data_dir=data,
        secret_key="bench",
        cds_clients=[{"iss": ISS, "jwks": json.loads(Path(args.jwks).read_text())}],
    )
    app = create_app(settings)

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/raw/cds":
            await floor(scope, receive, send)
        else:
            await app(scope, receive, send)

    uvicorn.run(route, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


@contextmanager
def server(key: ECKey, cpu: int | None) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cdss-cds-bench-") as tmp:
        jwks = Path(tmp) / "jwks.json"
        public = {**key.as_dict(private=False), "kid": "bench", "alg": "ES384"}
        jwks.write_text(json.dumps({"keys": [public]}))
        port = free_port()
        cmd = [sys.executable, str(BENCH / "cds.py"), "serve", "--port", str(port)]
        cmd += ["--data-dir", tmp, "--jwks", str(jwks)]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent), str(BENCH)])}
        proc = subprocess.Popen(cmd, cwd=tmp, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start within 60 s")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the data set ------------------------------------------------------------------------------


def record(now: datetime) -> dict[str, list[dict[str, Any]]]:
    observations = []
    for i in range(50):
        when = ex.days_ago(now, 3 + i * 14)
        if i % 2:
            observations.append(ex.creatinine(f"obs-{i}", PID, 1.0 + (i % 7) / 10, when))
        else:
            observations.append(ex.egfr(f"obs-{i}", PID, 70 - (i % 9), when))
    studies = [
        ex.imaging_study(f"st-{i}", PID, ex.days_ago(now, 40 + 60 * i), description=desc)
        for i, desc in enumerate(["CT Chest", "CT Abdomen Pelvis", "MR Brain", "CT Head"] * 3)
    ][:10]
    orders = [
        ex.service_request(
            f"sr-{i}", PID, code, status=status, authored=ex.days_ago(now, 50 + 30 * i)
        )
        for i, (code, status) in enumerate(
            [
                (ex.CT_CHEST_PLAIN, "completed"),
                (ex.HBA1C, "completed"),
                (ex.MR_BRAIN_CONTRAST, "completed"),
                (ex.HBA1C, "active"),
                (ex.CT_CHEST_CONTRAST, "completed"),
            ]
        )
    ]
    return {
        "patient": [ex.patient(PID)],
        "renal": observations,
        "allergies": [ex.contrast_allergy("al-1", PID)],
        "medications": [ex.metformin("med-1", PID)],
        "studies": studies,
        "orders": orders,
    }


def drafts() -> list[dict[str, Any]]:
    return [
        ex.service_request("draft-1", PID, ex.CT_CHEST_CONTRAST),
        ex.service_request("draft-2", PID, ("36813-4", "CT Abdomen and Pelvis W contrast IV")),
        ex.service_request("draft-3", PID, ex.MR_BRAIN_CONTRAST),
    ]


def bodies(n: int, prefetch: dict[str, Any] | None) -> list[bytes]:
    template = ex.order_request("order-sign", PID, drafts(), prefetch=prefetch)
    out = []
    for _ in range(n):
        template["hookInstance"] = str(uuid.uuid4())
        out.append(orjson.dumps(template))
    return out


def load(base: str, data: dict[str, list[dict[str, Any]]]) -> None:
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for rs in data.values()
        for r in rs
    ]
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    resp = httpx.post(f"{base}/fhir/", json=tx, timeout=60)
    resp.raise_for_status()


# -- client side -------------------------------------------------------------------------------


async def run(
    base: str, path: str, payloads: list[bytes], tokens: list[str] | None, concurrency: int
) -> tuple[list[float], float, int]:
    """Latencies (ms), wall seconds and non-200 count for the payloads sent `concurrency` wide."""
    latencies: list[float] = []
    errors = 0
    queue = list(range(len(payloads)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def worker() -> None:
            nonlocal errors
            while queue:
                i = queue.pop()
                headers = {"content-type": "application/json"}
                if tokens is not None:
                    headers["authorization"] = f"Bearer {tokens[i]}"
                started = time.perf_counter()
                resp = await http.post(path, content=payloads[i], headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status_code != 200:
                    errors += 1
                    print(f"HTTP {resp.status_code}: {resp.text[:200]}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, wall, errors


def tokens(key: ECKey, base: str, n: int) -> list[str]:
    aud = f"{base}/cds-services/{SERVICE}"
    return [sign_client_jwt(key, iss=ISS, aud=aud, kid="bench") for _ in range(n)]


def measure(
    base: str, key: ECKey, prefetch: dict[str, Any] | None, rounds: int, per_round: int, log: Log
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"floor": [], "system": []}
    rates: dict[str, list[float]] = {"floor": [], "system": []}
    errors = 0
    check = httpx.post(
        f"{base}/cds-services/{SERVICE}",
        content=bodies(1, prefetch)[0],
        headers={"authorization": f"Bearer {tokens(key, base, 1)[0]}"},
        timeout=30,
    )
    check.raise_for_status()
    kinds = sorted({c["source"]["topic"]["code"] for c in check.json()["cards"]})
    for r in range(rounds):
        for kind in ("floor", "system"):
            payloads = bodies(per_round, prefetch)
            toks = tokens(key, base, per_round) if kind == "system" else None
            path = "/raw/cds" if kind == "floor" else f"/cds-services/{SERVICE}"
            lat, wall, bad = asyncio.run(run(base, path, payloads, toks, 8))
            if r > 0:  # the first round warms up both
                samples[kind] += lat
                rates[kind].append(per_round / wall)
                errors += bad if kind == "system" else 0
        log(f"round {r + 1}/{rounds}: system p50 {median(samples['system'] or [0]):.1f} ms")
    out: dict[str, Any] = {"cards": kinds, "requests": len(samples["system"]), "errors": errors}
    for kind in ("floor", "system"):
        out[kind] = {
            "p50_ms": round(percentile(samples[kind], 50), 2),
            "p99_ms": round(percentile(samples[kind], 99), 2),
            "throughput_rps": round(median(rates[kind]), 1),
        }
    out["p50_ratio"] = round(out["system"]["p50_ms"] / out["floor"]["p50_ms"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args()
    log = Log()
    key = ECKey.generate_key("P-384")
    now = datetime.now(UTC)
    data = record(now)
    prefetch = {k: (v[0] if k == "patient" else ex.bundle(v)) for k, v in data.items()}
    with server(key, args.cpu) as base:
        load(base, data)
        log(f"server at {base}; {sum(len(v) for v in data.values())} resources loaded")
        log("complete prefetch")
        complete = measure(base, key, prefetch, args.rounds, args.per_round, log)
        log("fallback fetch from the facade")
        fallback = measure(base, key, None, args.rounds, args.per_round // 2, log)
    complete["goal"] = "p50 <= 3x floor, p99 <= 100 ms"
    complete["met"] = complete["p50_ratio"] <= 3 and complete["system"]["p99_ms"] <= 100
    fallback["goal"] = "p99 <= 500 ms"
    fallback["met"] = fallback["system"]["p99_ms"] <= 500
    result = {
        "machine": {"cpus": os.cpu_count(), "concurrency": 8},
        "order_sign_complete_prefetch": complete,
        "order_sign_fallback_fetch": fallback,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve_main(sys.argv[2:])
    else:
        main()
