"""Benchmark of the FHIR facade, each figure against a floor measured in the same run.

Workloads, on SQLite (a file in a temp dir) and PostgreSQL (a throwaway cluster):

1. ingest: transaction Bundles of 100 resources (10 Patients + 90 Observations referencing them
   by urn:uuid fullUrls) POSTed to {base}/fhir/ over HTTP -- resources/s. Floor: the same
   resources' JSON bytes inserted raw, one executemany and one transaction per 100, into a plain
   table (res_type, res_id, content; primary key on the first two) of the same database.
   Goal: >= 1,000 resources/s.
2. read by id: GET {base}/fhir/{type}/{id} -- p50/p99 ms. Floor: a bare ASGI route in the same
   uvicorn process doing one indexed `SELECT content FROM resources WHERE res_type=? AND
   res_id=?` on one raw connection and returning the bytes, hit by the same client the same way.
   Context: that SELECT alone, in-process. Goal: p50 <= 5x the floor.
3. search: Observation?patient=X&code=Y&_sort=-date&_count=50 over N Observations and M
   Patients -- p50/p99 ms. Floor: the hand-written join of resources, idx_reference, idx_token
   and idx_date ordered by date (_harness.SEARCH_SQL), served by the same kind of bare ASGI
   route (HTTP to HTTP), and in-process for context. The facade, the route and the SQL are
   checked to return the same ids in the same order (and the same resources). Goal: p50 <= 3x
   the floor. The floor runs the join at its best: a custom plan per run on PostgreSQL (no
   server-side prepared statement), the patient's references as the driving table on SQLite.

Floor and system rounds alternate (floor, system, floor, system...) and the figures are the
medians over rounds, because this kind of machine drifts several-fold from minute to minute.
The server is one uvicorn process (a subprocess, so client and server never share a GIL);
the client is httpx with keep-alive in this process, one request at a time. A slow system gets
fewer requests per round (a time budget per round), so the run ends in bounded time; the counts
are in the output.

The search data set is loaded with the store's own record functions (stamped bytes, content
hash and index rows exactly as SqlUnit computes them, from resources checked to be canonical
under fhir.validate) and bulk inserts into the store's tables; loading time is not a figure.
PostgreSQL then gets VACUUM ANALYZE (what autovacuum would soon do); SQLite gets no ANALYZE,
as the store never runs one.

Progress goes to stderr, the JSON figures to stdout (and --out FILE):
{backend: {workload: {"system", "floor", "unit", "ratio", "goal", "met", ...context}}}, where
ratio is how many times the floor does better (system/floor for latencies, floor/system for
throughput).

    .venv/bin/python bench/facade.py --backend both          # full run, a few minutes
    .venv/bin/python bench/facade.py --quick                 # smoke run, well under a minute
    .venv/bin/python bench/facade.py --backend postgres --workloads ingest \
        --server-prefix "py-spy record -f raw -o ingest.txt --"   # profile the server
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
for _p in (BENCH.parent, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import httpx  # noqa: E402
import orjson  # noqa: E402
from _harness import Log, RawDB, median, percentile, server  # noqa: E402

from fhir_facade.fhir import validate  # noqa: E402
from fhir_facade.store import records  # noqa: E402
from fhir_facade.store.sql_store import SqlStore  # noqa: E402
from fhir_facade.store.tables import INDEX_TABLES, resource_history, resources  # noqa: E402
from tests.support import postgres  # noqa: E402

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# (code, display, category, unit, low, high, decimals, weight): a vital-signs/lab mix in which
# heart rate is common enough (about 60 per patient at the default sizes) to fill a 50-page.
CODES: tuple[tuple[str, str, str, str, float, float, int, float], ...] = (
    ("8867-4", "Heart rate", "vital-signs", "/min", 50, 120, 0, 0.60),
    ("8310-5", "Body temperature", "vital-signs", "Cel", 36.0, 39.5, 1, 0.15),
    ("2339-0", "Glucose [Mass/volume] in Blood", "laboratory", "mg/dL", 60, 250, 0, 0.10),
    ("29463-7", "Body weight", "vital-signs", "kg", 40.0, 120.0, 1, 0.10),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "laboratory", "g/dL", 9.0, 17.5, 1, 0.05),
)
SEARCH_CODE = CODES[0][0]
SEARCH_COUNT = 50
_T0 = datetime(2021, 1, 1, tzinfo=UTC)
_SPAN_S = 4 * 365 * 86_400


@dataclass(frozen=True)
class Sizes:
    ingest_rounds: int
    bundles_per_round: int
    read_rounds: int
    reads_per_round: int
    search_rounds: int
    searches_per_round: int
    verify: int
    round_budget_s: float  # the system's side of one latency round, at most (about)


FULL = Sizes(7, 4, 7, 300, 7, 100, 8, 2.5)
QUICK = Sizes(3, 2, 3, 100, 3, 20, 4, 1.0)


# -- data -------------------------------------------------------------------------------------


def patient(rng: random.Random, n: int) -> dict[str, Any]:
    """A Patient in canonical form (the model's own key order, no nulls)."""
    birth = _T0.date() - timedelta(days=rng.randrange(18 * 365, 90 * 365))
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": f"MRN{n:08d}"}],
        "active": True,
        "name": [{"family": f"Family{n % 997}", "given": [f"Given{n % 101}"]}],
        "gender": rng.choice(("female", "male")),
        "birthDate": birth.isoformat(),
    }


def observation(rng: random.Random, subject: str) -> dict[str, Any]:
    """An Observation in canonical form: category, LOINC code, subject, dateTime, Quantity."""
    code, display, category, unit, low, high, decimals, _ = rng.choices(
        CODES, weights=[c[-1] for c in CODES]
    )[0]
    value: float | int = round(rng.uniform(low, high), decimals)
    if decimals == 0:
        value = int(value)
    when = _T0 + timedelta(seconds=rng.randrange(_SPAN_S))
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": subject},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def check_canonical(samples: Sequence[dict[str, Any]]) -> None:
    """The generated resources must be exactly what validation would make of them, so that the
    bulk-loaded bytes are the bytes the store itself would have written."""
    for res in samples:
        got, want = orjson.dumps(validate(res)), orjson.dumps(res)
        assert got == want, f"not canonical:\n{want!r}\n{got!r}"


@dataclass
class Prepared:
    """The search data set, computed once and written to each backend."""

    patient_ids: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # resources rows, no pk
    index: list[dict[str, list[dict[str, Any]]]] = field(default_factory=list)  # pk to fill
    observations: int = 0


Rows = tuple[list[dict[str, Any]], list[dict[str, list[dict[str, Any]]]]]


def stored_rows(resources_: Sequence[tuple[str, dict[str, Any]]], us: int) -> Rows:
    """What SqlUnit._insert writes for each (id, resource), computed by the same functions:
    the resources row (stamped canonical bytes, content hash) and the index rows (pk 0)."""
    rows, index = [], []
    for rid, res in resources_:
        rows.append(
            {
                "res_type": res["resourceType"],
                "res_id": rid,
                "version_id": 1,
                "last_updated": us,
                "deleted": False,
                "content_hash": records.content_hash(res),
                "content": records.stamp(res, rid, 1, records.instant(us)),
            }
        )
        index.append(records.index_rows(0, res))
        us += 1
    return rows, index


def _observation_chunk(job: tuple[int, list[str], int, int, int]) -> Rows:
    """Observations lo..hi-1, from their own seed so the data set is the same however split."""
    seed, patient_ids, lo, hi, us = job
    rng = random.Random(f"{seed}/{lo}")
    made = []
    for i in range(lo, hi):
        subject = f"Patient/{patient_ids[i % len(patient_ids)]}"
        oid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        made.append((oid, observation(rng, subject)))
    if lo == 0:
        check_canonical([r for _, r in made[:20]])
    return stored_rows(made, us + lo)


def prepare(n_patients: int, n_obs: int, seed: int, workers: int) -> Prepared:
    """The search data set, computed once (in `workers` processes) for every backend."""
    rng = random.Random(seed)
    out = Prepared(observations=n_obs)
    made = []
    for n in range(n_patients):
        pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out.patient_ids.append(pid)
        made.append((pid, patient(rng, n)))
    check_canonical([r for _, r in made[:20]])
    us = records.now_us()
    out.rows, out.index = stored_rows(made, us)
    us += n_patients
    step = 5_000
    jobs = [(seed, out.patient_ids, lo, min(lo + step, n_obs), us) for lo in range(0, n_obs, step)]
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_observation_chunk, jobs)
    else:
        parts = [_observation_chunk(job) for job in jobs]
    for rows, index in parts:
        out.rows += rows
        out.index += index
    return out


def load(url: str, data: Prepared, log: Log, batch: int = 10_000, *, fast: bool = True) -> None:
    """Write the prepared rows into the store's tables (resources, history, index rows) as
    SqlUnit would, but in bulk: executemany on SQLite, COPY on PostgreSQL. `fast`: drop the
    secondary indexes and rebuild them after (and skip PostgreSQL's per-row foreign-key
    triggers; the rows are consistent by construction), the usual bulk-load moves; the schema
    ends exactly as Alembic made it."""
    SqlStore(url).close()  # creates the schema (Alembic), as the server will find it
    raw = RawDB(url)
    try:
        rebuild = raw.secondary_indexes() if fast else []
        for name, _ in rebuild:
            raw.execute(f"DROP INDEX {name}")
        if fast and raw.dialect == "postgresql":
            raw.execute("SET session_replication_role = replica")
        res_cols = [c.name for c in resources.columns]
        hist_cols = [c.name for c in resource_history.columns if c.name != "pk"]
        idx_cols = {kind: [c.name for c in t.columns] for kind, t in INDEX_TABLES.items()}
        first = int(raw.one("SELECT coalesce(max(pk), 0) + 1 FROM resources")[0])
        for start in range(0, len(data.rows), batch):
            rows = data.rows[start : start + batch]
            pks = range(first + start, first + start + len(rows))
            history = [{**r, "method": "POST"} for r in rows]
            with raw.transaction():
                raw.bulk_insert(
                    "resources",
                    res_cols,
                    [
                        [pk if c == "pk" else r[c] for c in res_cols]
                        for pk, r in zip(pks, rows, strict=True)
                    ],
                )
                raw.bulk_insert(
                    "resource_history", hist_cols, [[h[c] for c in hist_cols] for h in history]
                )
                for kind, cols in idx_cols.items():
                    idx = [
                        [pk if c == "resource_pk" else x[c] for c in cols]
                        for pk, per in zip(pks, data.index[start : start + batch], strict=True)
                        for x in per[kind]
                    ]
                    if idx:
                        raw.bulk_insert(INDEX_TABLES[kind].name, cols, idx)
            if (start // batch) % 3 == 2:
                log(f"  loaded {start + len(rows):,} / {len(data.rows):,}")
        for _, ddl in rebuild:
            raw.execute(ddl)
        if raw.dialect == "postgresql":
            raw.execute("SET session_replication_role = DEFAULT")
            raw.execute(
                "SELECT setval(pg_get_serial_sequence('resources', 'pk'), max(pk)) FROM resources"
            )
    finally:
        raw.close()


@dataclass
class IngestBundle:
    body: bytes  # the transaction Bundle, serialized once
    raw: list[tuple[str, str, bytes]]  # the floor's rows: the same resources' JSON bytes


def ingest_bundles(rng: random.Random, count: int, patients: int = 10) -> list[IngestBundle]:
    per_patient = (100 - patients) // patients

    def urn() -> str:
        return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"

    out = []
    for b in range(count):
        entries: list[dict[str, Any]] = []
        for p in range(patients):
            patient_urn = urn()
            entries.append(
                {
                    "fullUrl": patient_urn,
                    "resource": patient(rng, 10_000_000 + b * patients + p),
                    "request": {"method": "POST", "url": "Patient"},
                }
            )
            entries += [
                {
                    "fullUrl": urn(),
                    "resource": observation(rng, patient_urn),
                    "request": {"method": "POST", "url": "Observation"},
                }
                for _ in range(per_patient)
            ]
        resources_ = [e["resource"] for e in entries]
        raw = [(r["resourceType"], str(uuid.uuid4()), orjson.dumps(r)) for r in resources_]
        body = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        out.append(IngestBundle(body, raw))
    return out


# -- measuring --------------------------------------------------------------------------------


def timed_gets(
    client: httpx.Client, urls: Sequence[str], budget_s: float | None = None, least: int = 3
) -> list[float]:
    """Milliseconds per GET, the body read in full; any non-200 fails the run. With a budget,
    stops early (after at least `least` requests) once the budget is spent."""
    gc.collect()
    out: list[float] = []
    clock = time.perf_counter_ns
    stop = clock() + int(budget_s * 1e9) if budget_s is not None else None
    for url in urls:
        if stop is not None and len(out) >= least and clock() > stop:
            break
        t = clock()
        resp = client.get(url)
        dt = clock() - t
        if resp.status_code != 200:
            raise RuntimeError(f"GET {url} -> {resp.status_code}: {resp.text[:300]}")
        out.append(dt / 1e6)
    return out


def timed_sql(
    run: Callable[[Sequence[object]], list[Any]], params: Sequence[Sequence[object]]
) -> list[float]:
    gc.collect()
    out = []
    clock = time.perf_counter_ns
    for p in params:
        t = clock()
        rows = run(p)
        dt = clock() - t
        if not rows:
            raise RuntimeError(f"no rows for {p}")
        out.append(dt / 1e6)
    return out


def per_round(warm_ms: Sequence[float], most: int, budget_s: float, least: int = 10) -> int:
    """Requests per round: `most`, or fewer when the system's warm-up latency says a round
    would take more than `budget_s` (so that a slow system still ends the run in time)."""
    return max(least, min(most, int(budget_s * 1000 / median(warm_ms))))


def latency_entry(
    system_rounds: list[list[float]],
    floor_rounds: list[list[float]],
    goal_ratio: float,
) -> dict[str, Any]:
    """p50 and p99 per round, medians over rounds; the goal is on p50."""
    s50 = median([percentile(r, 50) for r in system_rounds])
    f50 = median([percentile(r, 50) for r in floor_rounds])
    s99 = median([percentile(r, 99) for r in system_rounds])
    f99 = median([percentile(r, 99) for r in floor_rounds])
    return {
        "system": round(s50, 3),
        "floor": round(f50, 3),
        "unit": "ms, p50 (median over rounds)",
        "ratio": round(s50 / f50, 2),
        "goal": f"system p50 <= {goal_ratio:g}x floor p50",
        "met": s50 <= goal_ratio * f50,
        "p99": {"system": round(s99, 3), "floor": round(f99, 3), "ratio": round(s99 / f99, 2)},
        "rounds": len(system_rounds),
        "requests_per_round": {
            "system": [len(r) for r in system_rounds],
            "floor": [len(r) for r in floor_rounds],
        },
        "round_p50s": {
            "system": [round(percentile(r, 50), 3) for r in system_rounds],
            "floor": [round(percentile(r, 50), 3) for r in floor_rounds],
        },
    }


def bench_ingest(
    client: httpx.Client, base: str, raw: RawDB, sizes: Sizes, rng: random.Random, log: Log
) -> dict[str, Any]:
    per = sizes.bundles_per_round
    bundles = ingest_bundles(rng, 2 + 2 * sizes.ingest_rounds * per)
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    raw.create_raw_table()

    def post(b: IngestBundle) -> None:
        resp = client.post(f"{base}/fhir/", content=b.body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"transaction -> {resp.status_code}: {resp.text[:500]}")

    # warm-up, and a check that the server did what the figure claims
    resp = client.post(f"{base}/fhir/", content=bundles[0].body, headers=headers)
    statuses = {e["response"]["status"] for e in resp.json()["entry"]}
    assert resp.status_code == 200 and statuses == {"201 Created"}, (resp.status_code, statuses)
    raw.insert_batch(bundles[1].raw)
    queue = iter(bundles[2:])
    floor_rates, system_rates = [], []
    for rnd in range(sizes.ingest_rounds):
        batch = [next(queue) for _ in range(per)]
        n = sum(len(b.raw) for b in batch)
        gc.collect()
        t = time.perf_counter()
        for b in batch:
            raw.insert_batch(b.raw)
        floor_rates.append(n / (time.perf_counter() - t))
        batch = [next(queue) for _ in range(per)]
        n = sum(len(b.raw) for b in batch)
        gc.collect()
        t = time.perf_counter()
        for b in batch:
            post(b)
        system_rates.append(n / (time.perf_counter() - t))
        log(
            f"  ingest round {rnd + 1}/{sizes.ingest_rounds}: floor {floor_rates[-1]:,.0f}/s, "
            f"system {system_rates[-1]:,.0f}/s"
        )
    s, f = median(system_rates), median(floor_rates)
    return {
        "system": round(s, 1),
        "floor": round(f, 1),
        "unit": "resources/s (median over rounds)",
        "ratio": round(f / s, 2),
        "goal": "system >= 1000 resources/s",
        "met": s >= 1000,
        "rounds": sizes.ingest_rounds,
        "resources_per_round": per * 100,
        "round_rates": {
            "system": [round(x) for x in system_rates],
            "floor": [round(x) for x in floor_rates],
        },
        "bundle": "transaction, 10 Patients + 90 Observations (urn:uuid references)",
    }


def bench_read(
    client: httpx.Client,
    base: str,
    raw: RawDB,
    data: Prepared,
    sizes: Sizes,
    rng: random.Random,
    log: Log,
) -> dict[str, Any]:
    keys = [(r["res_type"], r["res_id"]) for r in data.rows]
    # the warm-up checks that both routes return the stored bytes for the same resource
    rt, rid = keys[0]
    a = client.get(f"{base}/fhir/{rt}/{rid}")
    b = client.get(f"{base}/raw/read/{rt}/{rid}")
    assert a.status_code == b.status_code == 200 and a.content == b.content, "read mismatch"
    warm = rng.sample(keys, min(50, len(keys)))
    timed_gets(client, [f"{base}/raw/read/{t}/{i}" for t, i in warm])
    warm_ms = timed_gets(client, [f"{base}/fhir/{t}/{i}" for t, i in warm])
    n = per_round(warm_ms, sizes.reads_per_round, sizes.round_budget_s)
    floor_rounds, system_rounds, sql_rounds = [], [], []
    for rnd in range(sizes.read_rounds):
        pick = rng.sample(keys, n)
        floor_rounds.append(timed_gets(client, [f"{base}/raw/read/{t}/{i}" for t, i in pick]))
        system_rounds.append(
            timed_gets(client, [f"{base}/fhir/{t}/{i}" for t, i in pick], sizes.round_budget_s)
        )
        sql_rounds.append(timed_sql(partial(raw.all, raw.read_sql), pick))
        log(
            f"  read round {rnd + 1}/{sizes.read_rounds}: p50 floor "
            f"{percentile(floor_rounds[-1], 50):.3f} ms, system "
            f"{percentile(system_rounds[-1], 50):.3f} ms"
        )
    out = latency_entry(system_rounds, floor_rounds, 5)
    out["sql_inprocess"] = {
        "p50": round(median([percentile(r, 50) for r in sql_rounds]), 4),
        "p99": round(median([percentile(r, 99) for r in sql_rounds]), 4),
        "unit": "ms",
        "what": "the floor's SELECT alone, in the client process, one raw connection",
    }
    return out


def search_urls(base: str, pid: str, code: str) -> tuple[str, str]:
    facade = f"{base}/fhir/Observation?" + urlencode(
        [
            ("patient", f"Patient/{pid}"),
            ("code", f"{LOINC}|{code}"),
            ("_sort", "-date"),
            ("_count", str(SEARCH_COUNT)),
        ]
    )
    floor = f"{base}/raw/search?" + urlencode(
        {"patient": pid, "system": LOINC, "code": code, "count": SEARCH_COUNT}
    )
    return facade, floor


def verify_search(
    client: httpx.Client, base: str, raw: RawDB, pid: str, code: str
) -> tuple[int, int | None]:
    """Assert the facade, the raw route and the in-process SQL give the same ids in order."""
    facade_url, floor_url = search_urls(base, pid, code)
    got = client.get(facade_url)
    assert got.status_code == 200, got.text[:500]
    bundle = got.json()
    facade_ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
    floor_ids = [e["resource"]["id"] for e in client.get(floor_url).json()["entry"]]
    rows = raw.search((pid, LOINC, code, SEARCH_COUNT))
    sql_ids = [r[0] for r in rows]
    assert facade_ids == sql_ids == floor_ids, (pid, code, facade_ids[:3], sql_ids[:3])
    assert facade_ids or code != SEARCH_CODE, (pid, code)
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", [])}
    assert all(by_id[r[0]] == orjson.loads(bytes(r[1])) for r in rows), "content differs"
    return len(facade_ids), bundle.get("total")


def bench_search(
    client: httpx.Client,
    base: str,
    raw: RawDB,
    data: Prepared,
    sizes: Sizes,
    rng: random.Random,
    log: Log,
) -> dict[str, Any]:
    pids = data.patient_ids
    checked, totals = 0, []
    for pid in rng.sample(pids, min(sizes.verify, len(pids))):
        for code in (SEARCH_CODE, rng.choice(CODES[1:])[0]):
            n, total = verify_search(client, base, raw, pid, code)
            checked += 1
            if code == SEARCH_CODE:
                totals.append(total)
    log(f"  search: facade, raw route and SQL agree on {checked} searches (ids and order)")
    warm = rng.sample(pids, min(20, len(pids)))
    timed_gets(client, [search_urls(base, p, SEARCH_CODE)[1] for p in warm])
    warm_ms = timed_gets(
        client, [search_urls(base, p, SEARCH_CODE)[0] for p in warm], sizes.round_budget_s
    )
    n = per_round(warm_ms, sizes.searches_per_round, sizes.round_budget_s)
    floor_rounds, system_rounds, sql_rounds = [], [], []
    for rnd in range(sizes.search_rounds):
        pick = [rng.choice(pids) for _ in range(n)]
        urls = [search_urls(base, p, SEARCH_CODE) for p in pick]
        floor_rounds.append(timed_gets(client, [u[1] for u in urls]))
        system_rounds.append(timed_gets(client, [u[0] for u in urls], sizes.round_budget_s))
        params = [(p, LOINC, SEARCH_CODE, SEARCH_COUNT) for p in pick]
        sql_rounds.append(timed_sql(raw.search, params))
        log(
            f"  search round {rnd + 1}/{sizes.search_rounds}: p50 floor "
            f"{percentile(floor_rounds[-1], 50):.3f} ms, system "
            f"{percentile(system_rounds[-1], 50):.3f} ms, sql "
            f"{percentile(sql_rounds[-1], 50):.3f} ms"
        )
    out = latency_entry(system_rounds, floor_rounds, 3)
    sql50 = median([percentile(r, 50) for r in sql_rounds])
    out["sql_inprocess"] = {
        "p50": round(sql50, 3),
        "p99": round(median([percentile(r, 99) for r in sql_rounds]), 3),
        "unit": "ms",
        "what": "the hand-written join alone, in the client process, one raw connection",
    }
    out["ratio_vs_sql_inprocess"] = round(out["system"] / sql50, 2)
    out["query"] = (
        f"Observation?patient=Patient/X&code={LOINC}|{SEARCH_CODE}&_sort=-date"
        f"&_count={SEARCH_COUNT}"
    )
    out["verified_searches"] = checked
    out["matches_per_patient_median"] = median([t for t in totals if t is not None] or [0])
    out["data"] = {"observations": data.observations, "patients": len(data.patient_ids)}
    return out


# -- orchestration ----------------------------------------------------------------------------


@contextmanager
def unpinned() -> Iterator[None]:
    """Processes started inside (PostgreSQL) may run on every CPU, whatever this one is on."""
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


@contextmanager
def database(backend: str, log: Log) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="cdss-bench-sqlite-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    reason = postgres.available()
    if reason is not None:
        raise SystemExit(f"PostgreSQL unavailable: {reason}")
    log("starting a throwaway PostgreSQL 15 cluster")
    with ExitStack() as stack:
        with unpinned():
            server_url = stack.enter_context(postgres.cluster())
        yield postgres.create_database(server_url, "bench")


@dataclass
class Pinning:
    server: int | None = None
    client: int | None = None

    def describe(self) -> str:
        if self.server is None:
            return "none (processes float over all CPUs)"
        return (
            f"server process on CPU {self.server}, client (this process) on CPU {self.client}, "
            "PostgreSQL unpinned"
        )


PIN = Pinning()


def run_backend(
    backend: str,
    data: Prepared,
    sizes: Sizes,
    seed: int,
    log: Log,
    prefix: Sequence[str],
    workloads: Sequence[str],
) -> dict[str, Any]:
    rng = random.Random(seed)
    with database(backend, log) as url:
        log(f"{backend}: loading {len(data.rows):,} resources (not timed as a figure)")
        t = time.perf_counter()
        load(url, data, log)
        raw = RawDB(url)
        try:
            if backend == "postgres":
                raw.execute("VACUUM ANALYZE")  # settle what autovacuum would do mid-run
            log(f"{backend}: loaded in {time.perf_counter() - t:.1f} s; starting the server")
            port = postgres.free_port()
            with (
                server(url, port, cpu=PIN.server, prefix=prefix) as (base, _proc),
                httpx.Client(timeout=120) as client,
            ):
                out = {}
                if "ingest" in workloads:
                    log(f"{backend}: ingest")
                    out["ingest_transaction"] = bench_ingest(client, base, raw, sizes, rng, log)
                if "read" in workloads:
                    log(f"{backend}: read by id")
                    out["read_by_id"] = bench_read(client, base, raw, data, sizes, rng, log)
                if "search" in workloads:
                    log(f"{backend}: search")
                    out["search_observation"] = bench_search(
                        client, base, raw, data, sizes, rng, log
                    )
        finally:
            raw.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--observations", type=int, default=None, help="default 100000")
    parser.add_argument("--patients", type=int, default=None, help="default 1000")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-pin", action="store_true", help="leave CPU affinity alone")
    parser.add_argument(
        "--workloads", default="ingest,read,search", help="a subset, comma-separated"
    )
    parser.add_argument(
        "--server-prefix",
        default="",
        help="command to wrap the server process in, e.g. 'py-spy record -o s.svg --'",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    n_obs = args.observations or (2_000 if args.quick else 100_000)
    n_pat = args.patients or (50 if args.quick else 1_000)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    log = Log()

    cpus = sorted(os.sched_getaffinity(0))
    log(f"preparing {n_pat:,} Patients and {n_obs:,} Observations ({len(cpus)} processes)")
    t = time.perf_counter()
    data = prepare(n_pat, n_obs, args.seed, len(cpus))
    gc.freeze()  # the data set stays alive all run: keep it out of every collection
    log(f"prepared in {time.perf_counter() - t:.1f} s")

    if not args.no_pin and len(cpus) >= 2:
        PIN.server, PIN.client = cpus[0], cpus[1]
        os.sched_setaffinity(0, {PIN.client})
    log(f"pinning: {PIN.describe()}")

    prefix = shlex.split(args.server_prefix)
    results: dict[str, Any] = {}
    for backend in backends:
        results[backend] = run_backend(
            backend, data, sizes, args.seed, log, prefix, args.workloads.split(",")
        )
    results["_meta"] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "pinning": PIN.describe(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "server": "uvicorn, 1 process (subprocess), log_level=warning; floor = bare ASGI "
        "routes under /raw in the same process",
        "client": "httpx.Client, HTTP/1.1 keep-alive, one request at a time",
        "interleaving": "each round runs the floor then the system; figures are medians "
        "over rounds",
        "elapsed_s": round(time.monotonic() - log.start, 1),
        "quick": args.quick,
    }
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
