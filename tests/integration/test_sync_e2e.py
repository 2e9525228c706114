"""Issue 3 end to end: a cohort seeded through the sources' own APIs (OpenEMR and SENAITE
simulators on loopback, the real Orthanc), then `cdss sync` as a separate process into the
facade's store. Includes killing the sync mid-run, following, and a source failing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, func, select, text

from adapters.base import LINK_TAG_SYSTEM
from fhir_facade.store.tables import resources
from simulators.cohort.seed import Targets, seed
from simulators.cohort.senaite_writer import SenaiteWriter
from simulators.openemr.app import create_openemr_app
from simulators.senaite import create_senaite_app
from tests.support import orthanc as orthanc_support
from tests.support.postgres import free_port
from tests.support.processes import signal_cdss
from tests.support.server import serve

INDEX = date(2025, 6, 1)


@dataclass
class Stack:
    env: dict[str, str]
    targets: Targets
    db_url: str
    senaite_app: Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = orthanc_support.available()
    if reason:
        pytest.fail(f"Orthanc is required: {reason}")
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    emr_app = create_openemr_app(public_base=f"http://127.0.0.1:{port}")
    lis_app = create_senaite_app()
    with (
        serve(emr_app, ready_path="/apis/default/fhir/metadata", port=port) as emr,
        serve(lis_app, ready_path="/senaite/@@API/senaite/v1/version") as lis,
        orthanc_support.orthanc(dicom_server=False) as pacs,
    ):
        targets = Targets(
            openemr_url=emr,
            senaite_url=f"{lis}/senaite",
            orthanc_url=pacs.url,
            orthanc_auth=pacs.auth,
        )
        seed(12, 4, targets, tmp / "cohort", index_date=INDEX)
        orthanc_support.wait_for_changes(pacs, "StableStudy", count=1, since=0, timeout=30)
        db_url = f"sqlite:///{tmp / 'facade.db'}"
        env = {
            **os.environ,
            "CDSS_DATA_DIR": str(tmp / "var"),
            "CDSS_DATABASE_URL": db_url,
            "CDSS_OPENEMR_URL": emr,
            "CDSS_SENAITE_URL": f"{lis}/senaite",
            "CDSS_ORTHANC_URL": pacs.url,
            "CDSS_ORTHANC_USER": pacs.auth[0],
            "CDSS_ORTHANC_PASSWORD": pacs.auth[1],
            "CDSS_SYNC_BATCH_SIZE": "25",
            "CDSS_SYNC_INTERVAL": "0.5",
        }
        yield Stack(env, targets, db_url, lis_app)


def _sync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdss.cli", "sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _rows(db_url: str) -> list[tuple[str, str, int]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.res_type, resources.c.res_id, resources.c.version_id)
        ).all()
    engine.dispose()
    return [(r[0], r[1], r[2]) for r in rows]


def _resources(db_url: str, rtype: str) -> list[dict[str, Any]]:
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
    return [orjson.loads(c) for c in rows]


def test_a_killed_sync_resumes_without_loss_or_duplicates(stack: Stack, tmp_path: Path) -> None:
    killed_env = {
        **stack.env,
        "CDSS_DATABASE_URL": f"sqlite:///{tmp_path / 'killed.db'}",
        "CDSS_SYNC_BATCH_SIZE": "5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "sync"],
        env=killed_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = create_engine(killed_env["CDSS_DATABASE_URL"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                n = conn.execute(select(func.count()).select_from(resources)).scalar_one()
        except Exception:  # the schema may not exist yet
            n = 0
        if n >= 150:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    engine.dispose()
    partial = len(_rows(killed_env["CDSS_DATABASE_URL"]))
    assert partial > 0, "the sync was killed before it stored anything"
    resumed = _sync(killed_env)
    assert resumed.returncode == 0, resumed.stderr
    clean = _sync(stack.env)
    assert clean.returncode == 0, clean.stderr

    def content_keys(url: str) -> set[tuple[str, str]]:
        return {(t, i) for t, i, _ in _rows(url) if t != "Provenance"}

    assert content_keys(killed_env["CDSS_DATABASE_URL"]) == content_keys(stack.db_url)
    killed = _rows(killed_env["CDSS_DATABASE_URL"])
    assert len(killed) == len({(t, i) for t, i, _ in killed})  # ids unique: no duplicates


def test_everything_is_linked_and_carries_its_provenance(stack: Stack) -> None:
    if not _rows(stack.db_url):
        assert _sync(stack.env).returncode == 0
    patients = _resources(stack.db_url, "Patient")
    assert len(patients) == 12
    pids = {p["id"] for p in patients}
    for rtype in (
        "Observation",
        "ServiceRequest",
        "Specimen",
        "DiagnosticReport",
        "ImagingStudy",
        "Condition",
    ):
        items = _resources(stack.db_url, rtype)
        assert items, rtype
        for item in items:
            ref = item["subject"]["reference"]
            assert ref.startswith("Patient/") and ref.split("/")[1] in pids, (rtype, ref)
            assert item["meta"]["source"]
            assert not any(t["system"] == LINK_TAG_SYSTEM for t in item["meta"].get("tag", []))
    labs = [
        o
        for o in _resources(stack.db_url, "Observation")
        if o.get("category", [{}])[0].get("coding", [{}])[0].get("code") == "laboratory"
    ]
    assert {c["system"] for o in labs for c in o["code"]["coding"]} >= {"http://loinc.org"}
    provenance = _resources(stack.db_url, "Provenance")
    targets = {t["reference"] for p in provenance for t in p["target"]}
    assert f"Patient/{patients[0]['id']}" in targets


def test_a_second_run_changes_nothing(stack: Stack) -> None:
    assert _sync(stack.env).returncode == 0
    before = _rows(stack.db_url)
    again = _sync(stack.env)
    assert again.returncode == 0, again.stderr
    assert _rows(stack.db_url) == before


def test_follow_shows_a_new_result_within_5_seconds_and_survives_a_failing_source(
    stack: Stack,
) -> None:
    assert _sync(stack.env).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "sync", "--follow"],
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        stack.senaite_app.state.senaite.inject_failures(6, status=503)
        time.sleep(2)
        before = len(_resources(stack.db_url, "Observation"))
        from simulators.cohort.model import generate

        extra = generate(1, 99, INDEX)[0]
        extra.mrn = "S4-000001"  # an existing patient of the seeded cohort
        writer = SenaiteWriter(stack.targets.senaite_url or "")
        written_at = time.monotonic()
        writer.write(extra)
        writer.close()
        while time.monotonic() - written_at < 5:
            if len(_resources(stack.db_url, "Observation")) > before:
                break
            time.sleep(0.1)
        assert len(_resources(stack.db_url, "Observation")) > before
        assert time.monotonic() - written_at < 5
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "senaite" in err.lower()  # the failing source was named in the log
    engine = create_engine(stack.db_url)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from store_state")).scalar_one() >= 3
    engine.dispose()


def test_ctrl_c_during_the_first_pass_of_follow_stops_it_cleanly(stack: Stack) -> None:
    """The signal lands while SENAITE is being retried in the first pass (before the follow
    loop): the pass ends, no KeyboardInterrupt, exit status 0."""
    stack.senaite_app.state.senaite.inject_failures(4, status=503)
    run = signal_cdss(
        ["sync", "--follow"], stack.env, lambda line: "retry 1 of 3" in line, signal.SIGINT
    )
    assert run.seen and "retry 1 of 3" in run.seen[-1], run.seen[-5:]
    assert run.returncode == 0, run.rest[-2000:]
    assert "KeyboardInterrupt" not in run.rest
