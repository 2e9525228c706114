"""Benchmark of the sync (ARCHITECTURE 3.5): a cohort pulled from all three sources into a facade.

Set-up, not measured as the figure: the OpenEMR and SENAITE simulators as real HTTP servers, each
in its own process (`python bench/sync.py serve openemr|senaite --port P`: uvicorn, data in that
process's memory), and a real Orthanc (adapters.orthanc.local). The synthetic cohort is written
through the sources' own APIs by `simulators.cohort.seed.seed` (timed and reported apart), in
stages so that the same servers hold the smaller cohort first and then the full one.

Measured, at each cohort size (default 250 and 1,000 patients), into a fresh facade store
(SQLite file; PostgreSQL too with --postgres): each source synced in linking order (OpenEMR,
SENAITE, Orthanc) by `Runner(store, [source]).run_once()` in a fresh process of its own
(bench/_sync_worker.py), so that its ru_maxrss is the sync's own memory peak. Per source:

* resources/s = resources stored / wall seconds of the sync;
* floor resources/s = the same resources / seconds to GET again every page the source read (the
  same URLs in the same order, recorded by response hooks on its HTTP clients) with one
  keep-alive httpx client and parse each body with orjson. Server-side rendering counts in both;
  mapping, validation, linking and the store count only in the sync;
* ratio = floor resources/s / resources/s (how many times slower than fetch + parse);
* peak memory = ru_maxrss after the sync - the resident set when it starts (after imports, store
  and source set-up), MiB; compared between the two cohort sizes (flat = streamed);
* breakdown: where the sync spent its time (source side vs the facade's write path and its
  parts), plus fhir.resources' validate split into model_validate / model_dump_json.

Goal: the whole cohort (1,000 patients by default) synced from all three sources in under 120 s,
memory flat in cohort size. Progress goes to stderr, the JSON figures to stdout (and --out).

    .venv/bin/python bench/sync.py [--patients 1000] [--quick] [--postgres] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for _p in (BENCH.parent, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import httpx  # noqa: E402
from _harness import Log  # noqa: E402

from adapters.orthanc import local as orthanc_local  # noqa: E402
from simulators.cohort.seed import SeedSummary, Targets, seed  # noqa: E402
from tests.support import postgres  # noqa: E402

GOAL_S = 120.0
SOURCES = ("openemr", "senaite", "orthanc")
INDEX = date(2025, 6, 1)
READY = {
    "openemr": "/apis/default/fhir/metadata",
    "senaite": "/senaite/@@API/senaite/v1/version",
}


# -- the simulators, each in its own process ----------------------------------------------------


def serve_main(argv: list[str]) -> None:
    """Entry point of a simulator process."""
    parser = argparse.ArgumentParser(prog="sync.py serve")
    parser.add_argument("system", choices=tuple(READY))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    if args.system == "openemr":
        from simulators.openemr.app import create_openemr_app

        app = create_openemr_app(public_base=f"http://127.0.0.1:{args.port}")
    else:
        from simulators.senaite import create_senaite_app

        app = create_senaite_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


@contextmanager
def simulator(system: str) -> Iterator[str]:
    port = postgres.free_port()
    cmd = [sys.executable, str(BENCH / "sync.py"), "serve", system, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the {system} simulator exited with {proc.returncode}")
            try:
                if httpx.get(base + READY[system], timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {system} simulator did not start within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- seeding ------------------------------------------------------------------------------------


def stable_studies(pacs: orthanc_local.OrthancServer) -> int:
    """StableStudy entries in Orthanc's whole change log (paged: Orthanc caps `limit`)."""
    since, found = 0, 0
    with httpx.Client(auth=pacs.auth, base_url=pacs.url, timeout=30) as http:
        while True:
            page = http.get("/changes", params={"since": since, "limit": 1000}).json()
            found += sum(1 for c in page["Changes"] if c["ChangeType"] == "StableStudy")
            if page["Done"] or not page["Changes"]:
                return found
            since = page["Last"]


def seed_stage(
    n: int, stage: int, targets: Targets, out: Path, log: Log
) -> tuple[SeedSummary, float]:
    """`n` more patients (a seed value per stage keeps MRNs and UIDs distinct); seconds taken."""
    started = time.perf_counter()
    step = max(1, n // 10)

    def progress(done: int) -> None:
        if done % step == 0:
            log(f"  seeded {done}/{n}")

    summary = seed(n, stage, targets, out / f"stage{stage}", index_date=INDEX, progress=progress)
    return summary, time.perf_counter() - started


def wait_stable(pacs: orthanc_local.OrthancServer, studies: int, log: Log) -> float:
    started = time.perf_counter()
    deadline = time.monotonic() + 120
    while (seen := stable_studies(pacs)) < studies:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {studies} studies became stable in Orthanc")
        time.sleep(0.5)
    log(f"  {studies} studies stable in Orthanc")
    return time.perf_counter() - started


# -- one measured sync per source ---------------------------------------------------------------


def sync_one(
    name: str, db: str, stack: dict[str, Any], data_dir: Path, profile: Path | None
) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / "_sync_worker.py"), "--source", name, "--db", db]
    cmd += ["--data-dir", str(data_dir), f"--{name}", stack[name]]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    env = dict(os.environ)  # Orthanc's credentials by environment, not on the command line
    env["BENCH_ORTHANC_USER"], env["BENCH_ORTHANC_PASSWORD"] = stack["orthanc_auth"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"sync {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


STORE_GLUE = (  # the store's own Python around its SQL (statements, rows, buffers)
    "unit.update",
    "unit.flush",
    "unit.create(provenance)",
    "unit.set_state",
    "unit.get_state",
    "unit.search",
)


def shares(raw: dict[str, Any]) -> dict[str, float]:
    """The sync's wall time cut into parts that add up (from the self times of the timed calls):
    the source (HTTP, parsing, mapping), the facade's write path (validation, index extraction,
    hash and canonical bytes, SQL including COMMIT, the store's own Python), the identity linker
    (its own Python; the searches' SQL is in sql), and the rest of the engine."""
    own = {k: v["self"] for k, v in raw["breakdown"].items()}
    parts = {
        "source": raw["source_seconds"],
        "validate": own.get("validate", 0.0),
        "index_rows": own.get("index_rows", 0.0),
        "hash_and_bytes": own.get("content_hash", 0.0) + own.get("stamp", 0.0),
        "sql": sum(v for k, v in own.items() if k.endswith("/sql") or k == "sql")
        + own.get("commit", 0.0),
        "store_python": sum(own.get(k, 0.0) for k in STORE_GLUE),
        "link": sum(own.get(k, 0.0) for k in ("link", "link.search", "relink")),
    }
    parts["engine_other"] = raw["seconds"] - sum(parts.values())
    parts["facade_write_path"] = sum(
        parts[k] for k in ("validate", "index_rows", "hash_and_bytes", "sql", "store_python")
    )
    return {k: round(v, 3) for k, v in parts.items()}


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    n, secs = raw["resources"], raw["seconds"]
    rate = n / secs if secs else 0.0
    floor = n / raw["floor_seconds"] if raw.get("floor_seconds") else 0.0
    rss = raw["rss_kib"]
    parts = shares(raw)
    return {
        "resources": n,
        "seconds": secs,
        "resources_per_s": round(rate, 1),
        "floor_resources_per_s": round(floor, 1),
        "ratio": round(floor / rate, 2) if rate else None,
        "peak_memory_mib": round((rss["peak"] - rss["before_sync"]) / 1024, 1),
        "process_maxrss_mib": round(rss["peak"] / 1024, 1),
        "requests": raw["requests"],
        "payload_mib": round(raw.get("bytes", 0) / 2**20, 2),
        "floor_seconds": raw.get("floor_seconds"),
        "parts_seconds": parts,
        "facade_write_share": round(parts["facade_write_path"] / secs, 3) if secs else None,
        "counts": raw["counts"],
        "rejected": raw["rejected"],
        "unlinked": raw["unlinked"],
        "breakdown": raw["breakdown"],
        "model_split": raw.get("model_split"),
    }


def sync_all(
    db: str, stack: dict[str, Any], tmp: Path, log: Log, profile_dir: Path | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SOURCES:
        profile = profile_dir / f"{name}.prof" if profile_dir else None
        raw = sync_one(name, db, stack, tmp / "var", profile)
        out[name] = figures(raw)
        f = out[name]
        log(
            f"  {name}: {f['resources']} resources in {f['seconds']:.1f} s "
            f"({f['resources_per_s']:.0f}/s, floor {f['floor_resources_per_s']:.0f}/s), "
            f"peak {f['peak_memory_mib']} MiB"
        )
    total = sum(v["seconds"] for v in out.values())
    write = sum(v["parts_seconds"]["facade_write_path"] for v in out.values())
    out["total"] = {
        "seconds": round(total, 1),
        "resources": sum(v["resources"] for v in out.values()),
        "facade_write_path_seconds": round(write, 1),
        "goal_s": GOAL_S,
        "met": total < GOAL_S,
    }
    return out


@contextmanager
def databases(backends: list[str], tmp: Path) -> Iterator[dict[str, str]]:
    """A server URL per backend: a temp dir for SQLite, a throwaway cluster for PostgreSQL."""
    with ExitStack() as stack:
        urls = {"sqlite": str(tmp)}
        if "postgres" in backends:
            reason = postgres.available()
            if reason:
                raise RuntimeError(f"PostgreSQL: {reason}")
            urls["postgres"] = stack.enter_context(postgres.cluster())
        yield urls


def fresh_db(backend: str, server: str, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{Path(server) / name}.db"
    return postgres.create_database(server, name)


def run(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    total = 50 if args.quick else args.patients
    sizes = sorted({max(1, total // 4), total})
    backends = ["sqlite", "postgres"] if args.postgres else ["sqlite"]
    result: dict[str, Any] = {"patients": total, "sizes": sizes, "seeding": {}, "sync": {}}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cdss-bench-sync-")))
        log("starting the simulators and Orthanc")
        emr = stack.enter_context(simulator("openemr"))
        lis = stack.enter_context(simulator("senaite"))
        pacs = stack.enter_context(orthanc_local.orthanc(dicom_server=False))
        dbs = stack.enter_context(databases(backends, tmp))
        targets = Targets(
            openemr_url=emr,
            senaite_url=f"{lis}/senaite",
            orthanc_url=pacs.url,
            orthanc_auth=pacs.auth,
        )
        endpoints = {
            "openemr": emr,
            "senaite": f"{lis}/senaite",
            "orthanc": pacs.url,
            "orthanc_auth": pacs.auth,
        }
        seeded, studies = 0, 0
        for stage, size in enumerate(sizes, start=1):
            log(f"seeding {size - seeded} patients (cohort of {size})")
            summary, secs = seed_stage(size - seeded, stage, targets, tmp, log)
            seeded, studies = size, studies + summary.ct_studies
            stable = wait_stable(pacs, studies, log)
            result["seeding"][str(size)] = {
                "patients_added": summary.patients,
                "seconds": round(secs, 1),
                "wait_stable_seconds": round(stable, 1),
                "samples": summary.samples,
                "lab_results": summary.lab_results,
                "ct_studies": summary.ct_studies,
                "ct_instances": summary.ct_instances,
            }
            log(f"  seeded in {secs:.1f} s")
            for backend in backends:
                log(f"syncing the cohort of {size} into a fresh {backend} store")
                db = fresh_db(backend, dbs[backend], f"facade_{size}")
                profile_dir = Path(args.profile) / f"{backend}_{size}" if args.profile else None
                if profile_dir is not None:
                    profile_dir.mkdir(parents=True, exist_ok=True)
                figs = sync_all(db, endpoints, tmp, log, profile_dir)
                result["sync"].setdefault(backend, {})[str(size)] = figs
                log(f"  total {figs['total']['seconds']} s (goal < {GOAL_S:.0f} s)")
    result["summary"] = summarize(result, sizes, backends)
    return result


def summarize(result: dict[str, Any], sizes: list[int], backends: list[str]) -> dict[str, Any]:
    """The headline: per backend, the full cohort's per-source figures and memory flatness."""
    out: dict[str, Any] = {}
    small, full = str(sizes[0]), str(sizes[-1])
    for backend in backends:
        runs = result["sync"][backend]
        per_source = {
            name: {
                k: runs[full][name][k]
                for k in (
                    "resources",
                    "seconds",
                    "resources_per_s",
                    "floor_resources_per_s",
                    "ratio",
                    "peak_memory_mib",
                    "facade_write_share",
                )
            }
            | {f"peak_memory_mib_at_{small}": runs[small][name]["peak_memory_mib"]}
            for name in SOURCES
        }
        out[backend] = {
            "per_source": per_source,
            "total_sync_seconds": runs[full]["total"]["seconds"],
            "facade_write_path_seconds": runs[full]["total"]["facade_write_path_seconds"],
            "goal_s": GOAL_S,
            "met": runs[full]["total"]["met"],
        }
    return out


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=1000, help="cohort size (default 1000)")
    parser.add_argument("--quick", action="store_true", help="a 50-patient cohort")
    parser.add_argument("--postgres", action="store_true", help="also sync into PostgreSQL")
    parser.add_argument("--out", help="also write the JSON figures to this file")
    parser.add_argument("--profile", help="directory for cProfile stats of each sync")
    args = parser.parse_args()
    log = Log()
    result = run(args, log)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
