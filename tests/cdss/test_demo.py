"""`cdss demo` as a user runs it: a real child process with a tiny cohort, real Orthanc.

It starts, prints its steps and a walkthrough naming a real patient, serves /readyz; every URL
it prints answers; the dashboard's SMART link completes an EHR launch into the app over HTTP
(the simulator's login, the app's callback); the facade wants tokens; SIGINT stops it all and
leaves no child process (Orthanc included) and no listening port.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import httpx
import orjson
import pytest

from adapters.base import MRN_SYSTEM
from adapters.orthanc import local as local_orthanc
from fhir_facade.search.query import parse_search
from fhir_facade.store.sql_store import SqlStore
from tests.models import risk_support
from tests.smart_app import flow
from tests.support.postgres import free_port

AI = "urn:cdss:ai"
CT_WITH_CONTRAST = "http://loinc.org|24628-0"  # "CT Chest W contrast IV" of the order catalogue
READY = re.compile(r"demo ready in ([\d.]+) s")
START_TIMEOUT_S = 80


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    port: int
    data: Path  # the demo's data folder (<CDSS_DATA_DIR>/demo)
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def url(self, pattern: str) -> str:
        match = re.search(pattern, self.text)
        assert match, f"{pattern!r} not in the demo's output:\n{self.text}"
        return match.group(1)


def _taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (Orthanc is one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _promote_tiny_imaging_model(root: Path) -> None:
    """A seeded, untrained tiny network (as tests/models/test_pipeline.py): the demo's wiring of
    the pipeline is under test here, the model's quality in tests/models/imaging."""
    import torch

    from models.imaging.config import TINY
    from models.imaging.infer import MODEL_NAME, WEIGHTS_FILE, weights_bytes
    from models.imaging.network import build_network
    from models.registry import ModelRegistry

    torch.manual_seed(0)
    card = {"config": TINY.as_json(), "calibration": {"method": "platt", "a": 1.0, "b": 0.0}}
    registry = ModelRegistry(root)
    version = registry.save(MODEL_NAME, {WEIGHTS_FILE: weights_bytes(build_network(TINY))}, card)
    registry.promote(MODEL_NAME, version.version)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    reason = local_orthanc.available()
    if reason:
        pytest.fail(f"Orthanc is required: {reason}")
    tmp = tmp_path_factory.mktemp("demo")
    models = tmp / "models"
    shutil.copytree(risk_support.models_dir(), models)  # a promoted risk model: reused
    _promote_tiny_imaging_model(models)
    port = free_port()
    while any(_taken(port + k) for k in (1, 2)):
        port = free_port()
    env = {
        **os.environ,
        "CDSS_DATA_DIR": str(tmp / "var"),
        "CDSS_MODELS_DIR": str(models),
        "CDSS_LOG_FORMAT": "text",
        "CDSS_LOG_LEVEL": "WARNING",
    }
    env.pop("CDSS_FHIR_AUTH", None)  # the suite disables auth; the demo runs secured
    command = [sys.executable, "-m", "cdss.cli", "demo", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--patients", "8"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Demo(proc, port, tmp / "var" / "demo")
    assert proc.stdout is not None
    reader = threading.Thread(
        target=lambda: running.lines.extend(line.rstrip() for line in proc.stdout or ()),
        daemon=True,
    )
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not READY.search(running.text):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"the demo did not get ready:\n{running.text}")
        time.sleep(0.2)
    try:
        yield running
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """After a failed test too: SIGINT first (the demo stops its Orthanc), SIGKILL as a last
    resort, then its children by PID (a killed demo cannot stop them)."""
    if proc.poll() is not None:
        return
    children = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid in children:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_steps_are_reported_with_timings_and_models_reused(demo: Demo) -> None:
    for step in ("simulators", "seeding 8 synthetic patients", "CDW ETL", "SMART app"):
        assert re.search(rf"\] .*{step}.*\.\.\.", demo.text), demo.text
    assert re.search(r"done in [\d.]+ s: 8 patients", demo.text)
    assert "reusing oncology-risk v1" in demo.text
    assert "imaging model: reusing lung-nodule-ct v1" in demo.text


def test_imaging_ai_runs_over_the_synced_studies(demo: Demo) -> None:
    """The first sync queued a job per CT study; the app's worker writes the AI finding."""
    deadline = time.monotonic() + 60
    while not (done := re.search(r"imaging AI: (\d+) studies analysed, (\d+) failed", demo.text)):
        assert time.monotonic() < deadline, demo.text
        time.sleep(0.5)
    analysed, failed = map(int, done.groups())
    assert failed == 0 and analysed >= 1
    store = SqlStore(f"sqlite:///{demo.data / 'cdss.db'}")
    try:
        with store.read_unit() as unit:
            mrn = parse_search("Patient", [("identifier", f"{MRN_SYSTEM}|S32-000006")])
            patient = unit.search(mrn).matches[0].id
            query = parse_search("Observation", [("patient", patient), ("_tag", f"{AI}|finding")])
            findings = [orjson.loads(m.content or b"{}") for m in unit.search(query).matches]
    finally:
        store.close()
    assert len(findings) == 1  # the story patient's prior CT has its AI finding
    assert findings[0]["derivedFrom"][0]["reference"].startswith("ImagingStudy/")
    assert float(READY.search(demo.text).group(1)) < START_TIMEOUT_S  # type: ignore[union-attr]


def test_printed_urls_answer_and_the_facade_wants_tokens(demo: Demo) -> None:
    base = f"http://127.0.0.1:{demo.port}"
    ready = httpx.get(demo.url(r"(http://\S+/readyz)"), timeout=10)
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert set(ready.json()["sources"]) >= {"openemr", "senaite", "orthanc"}
    meta = httpx.get(demo.url(r"(http://\S+/fhir/metadata)"), timeout=10)
    assert meta.json()["fhirVersion"] == "4.0.1"
    discovery = httpx.get(demo.url(r"CDS Hooks\s+(http://\S+)"), timeout=10)
    assert discovery.status_code == 401  # JWT-authenticated CDS clients only (the SMART app)
    assert "oncology-risk" in httpx.get(f"{base}/models", timeout=10).text
    finder = httpx.get(demo.url(r"OpenEMR \(sim\)\s+(http://\S+)"), timeout=10)
    assert finder.status_code == 200 and "Patient Finder" in finder.text
    refused = httpx.get(f"{base}/fhir/Patient", timeout=10)
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"


def test_walkthrough_names_the_story_patient_of_the_cohort(demo: Demo) -> None:
    """Seed 32 (the default): patient 6 has a prior chest CT with a nodule in the ground truth and
    eGFR 25 from SENAITE: the walkthrough must pick that one, with its synced values."""
    line = re.search(
        r"Walkthrough: (.+?), MRN (\S+): eGFR ([\d.]+) .*; prior chest CT.*", demo.text
    )
    assert line, demo.text
    assert line.group(2) == "S32-000006" and float(line.group(3)) < 30
    assert "a nodule in the cohort's truth" in line.group(0)
    with (demo.data / "cohort" / "ground_truth.csv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["mrn"] == "S32-000006")
    assert row["nodule"] == "1" and row["study_uid"]


def test_walkthrough_patient_launches_the_smart_app_from_the_dashboard(demo: Demo) -> None:
    name, mrn = re.search(r"Walkthrough: (.+?), MRN (\S+):", demo.text).groups()  # type: ignore[union-attr]
    dashboard = httpx.get(demo.url(r"dashboard: (http://\S+)"), timeout=10)
    assert dashboard.status_code == 200 and mrn in dashboard.text
    link = re.search(r'class="smart-launch" href="([^"]+)">cdss SMART app<', dashboard.text)
    assert link, dashboard.text
    emr = demo.url(r"OpenEMR \(sim\)\s+(http://[^/\s]+)")
    with httpx.Client(timeout=20) as http:
        launch = http.get(emr + unescape(link.group(1)))
        assert launch.status_code == 302
        assert launch.headers["location"].startswith(f"http://127.0.0.1:{demo.port}/smart/launch?")
        launched = flow.launch(http, launch.headers["location"])  # login admin / pass, callback
        landing = launched.landing
        if landing.startswith("/"):
            landing = f"http://127.0.0.1:{demo.port}{landing}"
        page = http.get(landing, headers=launched.headers)
        assert page.status_code == 200, page.text
        family = name.split()[-1]
        assert family in page.text  # the app shows the launched patient
        # order a contrast CT: the app calls the CDS service as a trusted (JWT) client and
        # reads the facade with its own token, which the facade trusts
        base = f"http://127.0.0.1:{demo.port}"
        selected = http.post(
            f"{base}/smart/api/orders/select",
            json={"key": CT_WITH_CONTRAST, "checked": True},
            headers=launched.headers,
        )
        assert selected.status_code == 200, selected.text
        cards = selected.json()["cards"]
        assert any(c["indicator"] == "warning" and "eGFR 25" in c["summary"] for c in cards), cards
        assert any(c["summary"].startswith("Prior study of") for c in cards), cards


def test_sigint_stops_everything_it_started(demo: Demo) -> None:
    children = _children(demo.proc.pid)
    assert children, "Orthanc should run as a child of the demo"
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(timeout=30) == 0, demo.text
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]
    assert not any(_taken(demo.port + k) for k in (0, 1, 2))
    assert "stopped" in demo.text


def test_without_orthanc_it_says_how_to_install_it_and_ctrl_c_while_seeding_stops_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    while any(_taken(port + k) for k in (1, 2)):
        port = free_port()
    env = {
        **os.environ,
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_MODELS_DIR": str(risk_support.models_dir()),  # read only: a promoted risk model
        "CDSS_ORTHANC_BIN": str(tmp_path / "no-orthanc"),
        "CDSS_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "demo", "--port", str(port), "--patients", "400"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    errors: list[str] = []  # shown when the exit status is wrong
    readers = [
        threading.Thread(target=lambda: lines.extend(x.rstrip() for x in proc.stdout or ())),
        threading.Thread(target=lambda: errors.extend(x.rstrip() for x in proc.stderr or ())),
    ]
    for reader in readers:
        reader.daemon = True
        reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("seeding 400" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.1)
        time.sleep(1.0)  # inside the seeding: patients are being written to the simulators
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        for reader in readers:
            reader.join(timeout=5)
        assert code == 0, (lines[-8:], errors[-40:])
    finally:
        _stop(proc)
    text = "\n".join(lines)
    assert "Install it with: apt-get install orthanc orthanc-dicomweb" in text
    assert "imaging AI off: no Orthanc" in text
    assert "stopped" in text.splitlines()[-1]
    assert not any(_taken(port + k) for k in (0, 1, 2))
