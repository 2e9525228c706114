"""`cdss demo`: the whole data path on one machine with embedded defaults.

OpenEMR and SENAITE simulators on the next two ports, Orthanc from Debian's packages when it is
installed (a clear message when not), a seeded cohort written through their APIs, a first sync,
then a sync follower beside the API server. The simulators keep their data in memory, so each
demo starts from a fresh state under `<data_dir>/demo` rather than mixing runs.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from adapters.orthanc import local as local_orthanc
from cdss.sources import SourceSettings, build_sources
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.runner import Runner
from simulators.cohort.seed import SeedSummary, Targets, seed
from simulators.openemr.app import create_openemr_app
from simulators.senaite import create_senaite_app

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoStack:
    data_dir: Path
    database_url: str
    openemr_url: str
    senaite_url: str
    orthanc_url: str | None
    orthanc_auth: tuple[str, str] | None
    emr_app: FastAPI  # the OpenEMR simulator (its tables and authorization server)
    orthanc_missing: str | None = None  # why Orthanc is not running


@contextmanager
def _background(app: FastAPI, host: str, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"sim-{port}", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def demo_stack(data_dir: Path, host: str, port: int) -> Iterator[DemoStack]:
    root = data_dir / "demo"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with ExitStack() as stack:
        emr_app = create_openemr_app(public_base=f"http://{host}:{port + 1}")
        emr = stack.enter_context(_background(emr_app, host, port + 1))
        lis = stack.enter_context(_background(create_senaite_app(), host, port + 2))
        pacs_url, pacs_auth = None, None
        reason = local_orthanc.available()
        if reason is None:
            pacs = stack.enter_context(
                local_orthanc.orthanc(dicom_server=False, workdir=root / "orthanc")
            )
            pacs_url, pacs_auth = pacs.url, pacs.auth
        else:
            log.warning(
                "Orthanc is not installed (%s): the demo runs without imaging. "
                "Install it with: apt-get install orthanc orthanc-dicomweb",
                reason,
            )
        yield DemoStack(
            root,
            f"sqlite:///{root / 'cdss.db'}",
            emr,
            f"{lis}/senaite",
            pacs_url,
            pacs_auth,
            emr_app,
            reason,
        )


def seed_and_sync(
    stack: DemoStack, *, patients: int, seed_value: int, public_base: str
) -> tuple[SeedSummary, Runner]:
    """Seed the sources, then sync them once; returns the runner for the follower."""
    targets = Targets(
        openemr_url=stack.openemr_url,
        senaite_url=stack.senaite_url,
        orthanc_url=stack.orthanc_url,
        orthanc_auth=stack.orthanc_auth,
    )
    summary = seed(patients, seed_value, targets, stack.data_dir / "cohort")
    settings = SourceSettings(
        data_dir=stack.data_dir,
        openemr_url=stack.openemr_url,
        senaite_url=stack.senaite_url,
        orthanc_url=stack.orthanc_url,
        orthanc_user=stack.orthanc_auth[0] if stack.orthanc_auth else None,
        orthanc_password=stack.orthanc_auth[1] if stack.orthanc_auth else None,
        dicomweb_public_url=f"{public_base}/dicom-web",
    )
    if stack.orthanc_url:
        local_orthanc_wait(stack)
    runner = Runner(SqlStore(stack.database_url), build_sources(settings))
    runner.run_once()
    return summary, runner


def local_orthanc_wait(stack: DemoStack, timeout: float = 30.0) -> None:
    """Orthanc marks a study stable StableAge seconds after its last instance: wait for it."""
    import httpx

    pause = threading.Event()
    with httpx.Client(base_url=stack.orthanc_url or "", auth=stack.orthanc_auth) as http:
        for _ in range(int(timeout * 10)):
            counts = {"NewStudy": 0, "StableStudy": 0}
            since, done = 0, False
            while not done:
                page = http.get("/changes", params={"since": since, "limit": 1000}).json()
                for change in page["Changes"]:
                    if change["ChangeType"] in counts:
                        counts[change["ChangeType"]] += 1
                since, done = page["Last"], page["Done"]
            if counts["StableStudy"] >= counts["NewStudy"]:
                return
            pause.wait(0.1)
