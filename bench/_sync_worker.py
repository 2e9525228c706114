"""The measured side of bench/sync.py: one source synced into one store, in its own process.

`python bench/_sync_worker.py --source NAME --db URL ...` builds the source exactly as `cdss sync`
does (cdss.sources.build_sources), then runs `Runner(store, [source]).run_once()` and prints one
JSON object on stdout:

* resources: what the sync stored (created + updated + unchanged, Provenance not counted);
* seconds: wall time of run_once (token fetch, every request, mapping, linking, store writes,
  the final relink); `source_seconds` is the part spent inside the source's `pull` generator
  (HTTP + parsing + mapping), the rest is the sync engine and the facade's write path;
* breakdown: seconds inside the write path's functions (see `instrument`), measured with
  perf_counter wrappers (about 1 us per call, well under 1 % of the figures);
* rss: the resident set (KiB) when the sync starts (after imports, store and source set-up) and
  ru_maxrss after it; their difference is the sync's memory peak;
* floor: the GET requests the source made, recorded by response hooks on its HTTP clients (URL,
  Authorization and Accept), replayed in the same order with one keep-alive httpx client, each
  body parsed with orjson: the least it takes to fetch and parse the same payloads. No mapping,
  no validation, no store. `floor_seconds` covers replay + parsing.
* model_split: for up to 100 stored resources per type, the cost of fhir.resources' steps as
  `fhir_facade.fhir.validate` runs them (model_validate, model_dump_json, orjson.loads), in us.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

BENCH = Path(__file__).resolve().parent
for _p in (BENCH.parent, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import httpx  # noqa: E402
import orjson  # noqa: E402
from pydantic import AnyHttpUrl, SecretStr  # noqa: E402
from sqlalchemy import Connection  # noqa: E402

from adapters.base import SOURCE_TAG_SYSTEM, Batch, Source  # noqa: E402
from cdss.sources import SourceSettings, build_sources  # noqa: E402
from fhir_facade.store import records, sql_unit  # noqa: E402
from fhir_facade.store.sql_store import SqlStore  # noqa: E402
from fhir_facade.sync import engine, linker, provenance  # noqa: E402
from fhir_facade.sync.runner import Runner  # noqa: E402

F = TypeVar("F", bound=Callable[..., Any])
Page = tuple[str, dict[str, str]]


class Timers:
    """Inclusive and self (exclusive of nested timed calls) seconds per timed function; the self
    times partition the time spent inside timed calls, so they add up. A `qualified` function is
    keyed by its caller too ("unit.update/sql")."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.own: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._open: list[list[Any]] = []  # per open call: [key, seconds of timed calls inside]

    def enter(self, name: str, qualified: bool = False) -> None:
        key = f"{self._open[-1][0]}/{name}" if qualified and self._open else name
        self._open.append([key, 0.0])

    def leave(self, elapsed: float) -> None:
        key, inner = self._open.pop()
        self.seconds[key] += elapsed
        self.own[key] += elapsed - inner
        self.calls[key] += 1
        if self._open:
            self._open[-1][1] += elapsed

    def wrap(self, name: str, fn: F, *, qualified: bool = False) -> F:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.enter(name, qualified)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave(time.perf_counter() - started)

        return timed  # type: ignore[return-value]

    def as_json(self) -> dict[str, Any]:
        return {
            k: {"seconds": round(self.seconds[k], 3), "self": round(v, 3), "calls": self.calls[k]}
            for k, v in sorted(self.own.items(), key=lambda kv: -kv[1])
        }


def instrument(timers: Timers, store: SqlStore) -> None:
    """Time the sync engine and the facade's write path from outside (no change to their code).

    unit.update calls validate (fhir.resources model_validate + model_dump_json + orjson.loads),
    content_hash, stamp (canonical bytes), index_rows (search index extraction) and its SQL
    (SELECT ... FOR UPDATE, then INSERT in a SAVEPOINT); flush = the buffered index and history
    rows (executemany) at commit and before each search; commit = the unit's last flush and
    COMMIT; link = the identity linker, link.search its Patient searches; relink = the final
    pass. Every SQLAlchemy Connection.execute is timed as "<caller>/sql".
    """
    unit_cls = sql_unit.SqlUnit
    for method, name in (
        ("update", "unit.update"),
        ("create", "unit.create(provenance)"),
        ("flush", "unit.flush"),
        ("set_state", "unit.set_state"),
        ("get_state", "unit.get_state"),
        ("search", "unit.search"),
    ):
        setattr(unit_cls, method, timers.wrap(name, getattr(unit_cls, method)))
    sql_unit.checked = timers.wrap("validate", sql_unit.checked)
    records.content_hash = timers.wrap("content_hash", records.content_hash)
    records.stamp = timers.wrap("stamp", records.stamp)
    records.index_rows = timers.wrap("index_rows", records.index_rows)
    ident = linker.IdentityLinker
    ident.link = timers.wrap("link", ident.link)  # type: ignore[method-assign]
    ident.patient_id = timers.wrap("link.search", ident.patient_id)  # type: ignore[method-assign]
    for name, fn in (("relink", linker.relink), ("stamp", provenance.stamp)):
        setattr(engine, name, timers.wrap(name, fn))
    Connection.execute = timers.wrap("sql", Connection.execute, qualified=True)  # type: ignore[method-assign]
    plain_unit = store.unit

    @contextmanager
    def unit() -> Iterator[sql_unit.SqlUnit]:
        with plain_unit() as u:
            yield u
            timers.enter("commit")
            started = time.perf_counter()
        timers.leave(time.perf_counter() - started)

    store.unit = unit  # type: ignore[method-assign]


class Timed:
    """A Source whose pull is timed (time spent producing batches: HTTP, parsing, mapping)."""

    def __init__(self, source: Source) -> None:
        self.inner = source
        self.name = source.name
        self.base_url = source.base_url
        self.seconds = 0.0

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        batches = self.inner.pull(cursor, batch_size=batch_size)
        while True:
            started = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield batch


def record_pages(source: Any, pages: list[Page]) -> None:
    """Response hooks on the source's HTTP clients: every GET it makes, with its auth."""

    def keep(url: str, method: str, headers: Any) -> None:
        if method == "GET":
            wanted = {k: v for k, v in headers.items() if k.lower() in ("authorization", "accept")}
            pages.append((url, wanted))

    def on_httpx(response: httpx.Response) -> None:
        keep(str(response.request.url), response.request.method, response.request.headers)

    def on_requests(response: Any, *_args: Any, **_kwargs: Any) -> None:
        keep(str(response.request.url), str(response.request.method), response.request.headers)

    client = source.client
    client._http.event_hooks = {"request": [], "response": [on_httpx]}
    if hasattr(client, "_session"):  # Orthanc: DICOMweb through requests
        client._session.hooks["response"].append(on_requests)


def replay(pages: list[Page]) -> tuple[float, int, int]:
    """(seconds, bytes, JSON values parsed) to GET the same pages again and parse them."""
    total = 0
    started = time.perf_counter()
    with httpx.Client(timeout=120) as http:
        for url, headers in pages:
            response = http.get(url, headers=headers)
            response.raise_for_status()
            total += len(response.content)
            orjson.loads(response.content)
    return time.perf_counter() - started, total, len(pages)


def unstamped(content: bytes) -> dict[str, Any]:
    """A stored resource as the sync handed it to the store (without the store's version)."""
    resource: dict[str, Any] = orjson.loads(content)
    meta = resource.get("meta") or {}
    for key in ("versionId", "lastUpdated"):
        meta.pop(key, None)
    return resource


def model_split(
    store: SqlStore, source: str, types: set[str], per_type: int = 100
) -> dict[str, Any]:
    """The steps of fhir_facade.fhir.validate timed apart, in us per resource, on up to
    `per_type` stored resources of each type from this source: the model's validation, the
    pruned copy and its serialisation (what is stored unless a string could have been coerced),
    and the model's own dump (stored instead when one could: `coercible` is that share)."""
    from sqlalchemy import select

    from fhir_facade import fhir
    from fhir_facade.store.tables import resources

    r = resources.c
    tag = {"system": SOURCE_TAG_SYSTEM, "code": source}
    sample: dict[str, list[dict[str, Any]]] = {t: [] for t in sorted(types)}
    with store.reader.connect() as conn:
        for rtype, kept in sample.items():
            rows = conn.execute(select(r.content).where(r.res_type == rtype, r.deleted.is_(False)))
            for (content,) in rows:
                resource = unstamped(content)
                if tag in (resource.get("meta") or {}).get("tag", []):
                    kept.append(resource)
                    if len(kept) == per_type:
                        break
    out: dict[str, Any] = {}
    for rtype, items in sample.items():
        cls = fhir.model_class(rtype)
        if cls is None or not items:
            continue
        spent: dict[str, float] = defaultdict(float)
        coercible = 0
        for item in items:
            t0 = time.perf_counter()
            model = cls.model_validate(dict(item))
            t1 = time.perf_counter()
            lookalikes: list[fhir.Path] = []
            pruned = fhir._prune(dict(item), (), lookalikes)
            odd = bool(lookalikes) and fhir._coerced(model, lookalikes)
            orjson.dumps(pruned)
            t2 = time.perf_counter()
            orjson.loads(model.model_dump_json(exclude_none=True, exclude_unset=True))
            t3 = time.perf_counter()
            spent["model_validate_us"] += t1 - t0
            spent["prune_and_dumps_us"] += t2 - t1
            spent["model_dump_json_us"] += t3 - t2
            coercible += odd
        n = len(items)
        out[rtype] = {"n": n, "coercible": round(coercible / n, 2)} | {
            k: round(v / n * 1e6, 1) for k, v in spent.items()
        }
    return out


def maxrss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def rss_kib() -> int:
    """The resident set now (Linux), the baseline the sync's peak is measured from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return maxrss_kib()


def settings(args: argparse.Namespace) -> SourceSettings:
    def url(value: str | None) -> AnyHttpUrl | None:
        return AnyHttpUrl(value) if value else None

    return SourceSettings(
        data_dir=Path(args.data_dir),
        openemr_url=url(args.openemr),
        senaite_url=url(args.senaite),
        orthanc_url=url(args.orthanc),
        orthanc_user=args.orthanc_user,
        orthanc_password=SecretStr(args.orthanc_password) if args.orthanc_password else None,
        sync_batch_size=args.batch_size,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="_sync_worker.py")
    parser.add_argument("--source", required=True, choices=("openemr", "senaite", "orthanc"))
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--openemr")
    parser.add_argument("--senaite")
    parser.add_argument("--orthanc")
    parser.add_argument("--orthanc-user", default=os.environ.get("BENCH_ORTHANC_USER"))
    parser.add_argument("--orthanc-password", default=os.environ.get("BENCH_ORTHANC_PASSWORD"))
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--profile", help="write cProfile stats of the sync to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    store = SqlStore(args.db)
    (source,) = build_sources(settings(args), only=args.source)
    pages: list[Page] = []
    record_pages(source, pages)
    timers = Timers()
    instrument(timers, store)
    timed = Timed(source)
    runner = Runner(store, [timed], batch_size=args.batch_size)
    gc.collect()
    rss_before = rss_kib()
    started = time.perf_counter()
    if args.profile:
        import cProfile

        with cProfile.Profile() as prof:
            reports = runner.run_once()
        prof.dump_stats(args.profile)
    else:
        reports = runner.run_once()
    seconds = time.perf_counter() - started
    rss_after = maxrss_kib()
    if runner.failures:
        sys.exit(f"sync {args.source} failed: {runner.failures}")
    report = reports[0]
    out: dict[str, Any] = {
        "source": args.source,
        "resources": report.stored,
        "counts": {t: c.created + c.updated + c.unchanged for t, c in report.counts.items()},
        "rejected": len(report.rejected),
        "unlinked": len(report.unlinked),
        "batches": report.batches,
        "seconds": round(seconds, 3),
        "source_seconds": round(timed.seconds, 3),
        "requests": len(pages),
        "rss_kib": {"before_sync": rss_before, "peak": rss_after},
        "breakdown": timers.as_json(),
    }
    if not args.no_floor:
        floor_s, nbytes, _ = replay(pages)
        out |= {"floor_seconds": round(floor_s, 3), "bytes": nbytes}
        out["model_split"] = model_split(store, args.source, set(report.counts))
    store.close()
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
