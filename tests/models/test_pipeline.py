"""The imaging pipeline end to end against a real Orthanc and the facade's store (SQLite).

CT studies of the synthetic cohort go into Orthanc; the real sync maps them into ImagingStudy
resources and, in the same unit, queues their AI jobs; the worker fetches each series by
DICOMweb, infers with a model from the registry, and writes the DiagnosticReport + Observation
into the store and a TID 1500 SR back into Orthanc. Also: a crashed claim is re-run once, and
bad inputs fail their job with a clear reason while the worker goes on.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import torch
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid

from adapters.base import MRN_SYSTEM
from adapters.orthanc.client import OrthancClient
from adapters.orthanc.source import OrthancSource
from fhir_facade.search.query import parse_search
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import sync_source
from models import jobs
from models.imaging import data
from models.imaging.config import TINY
from models.imaging.infer import MODEL_NAME, WEIGHTS_FILE, Predictor, weights_bytes
from models.imaging.network import build_network
from models.imaging.runtime import ImagingSettings
from models.imaging.worker import JobWorker
from models.pipeline import ImagingPipeline, NotReady
from models.registry import ModelRegistry
from simulators.cohort.ct import ct_series
from simulators.cohort.model import CohortGenerator, SyntheticPatient
from tests.support import orthanc

SEED = 11
SETTINGS = ImagingSettings(enabled=True, lease_s=60, max_attempts=2, retry_base_s=0)


@dataclass
class Stack:
    server: orthanc.OrthancServer
    pacs: OrthancClient
    store: SqlStore
    predictor: Predictor
    patients: list[SyntheticPatient]


def _bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _ct_patients(n: int) -> list[SyntheticPatient]:
    gen, i = CohortGenerator(SEED, data.DEFAULT_INDEX_DATE), 0
    out: list[SyntheticPatient] = []
    while len(out) < n:
        i += 1
        p = gen.patient(i)
        if p.ct is not None:
            out.append(p)
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (seeded, untrained) tiny network saved and promoted: the pipeline's plumbing is
    under test here, the model's quality in tests/models/imaging/test_train.py."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    card = {"config": TINY.as_json(), "calibration": {"method": "platt", "a": 1.0, "b": 0.0}}
    registry = ModelRegistry(root)
    version = registry.save(MODEL_NAME, {WEIGHTS_FILE: weights_bytes(build_network(TINY))}, card)
    registry.promote(MODEL_NAME, version.version)
    return root


@pytest.fixture(scope="module")
def stack(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required: {reason}")
    tmp = tmp_path_factory.mktemp("pipeline")
    jobs.install(True)
    store = SqlStore(f"sqlite:///{tmp / 'facade.db'}")
    patients = _ct_patients(2)
    with (
        orthanc.orthanc(dicom_server=False) as server,
        OrthancClient(server.url, auth=server.auth, timeout=10, attempts=2, backoff=0.05) as pacs,
    ):
        with store.unit() as unit:
            for p in patients:
                unit.create(
                    {
                        "resourceType": "Patient",
                        "identifier": [{"system": MRN_SYSTEM, "value": p.mrn}],
                        "name": [{"family": p.family, "given": [p.given]}],
                    }
                )
        for p in patients:
            for ds in ct_series(p, SEED):
                pacs.upload(_bytes(ds))
        orthanc.wait_for_changes(server, "StableStudy", count=len(patients), timeout=30)
        predictor = Predictor.promoted(ModelRegistry(model_dir))
        yield Stack(server, pacs, store, predictor, patients)
    store.close()
    jobs.install(False)


def _sync(stack: Stack) -> None:
    source = OrthancSource(
        stack.pacs, dicomweb_public_url=f"{stack.server.url}/dicom-web", base_url=stack.server.url
    )
    sync_source(stack.store, source)


def _worker(stack: Stack) -> JobWorker:
    return JobWorker(
        stack.store, ImagingPipeline(stack.store, stack.pacs, stack.predictor), SETTINGS
    )


def _search(store: SqlStore, rtype: str, *pairs: tuple[str, str]) -> list[dict[str, Any]]:
    with store.read_unit() as unit:
        page = unit.search(parse_search(rtype, list(pairs)))
    return [orjson.loads(m.content or b"{}") for m in page.matches]


def _components(obs: dict[str, Any]) -> dict[str, Any]:
    return {c["code"]["coding"][0]["code"]: c for c in obs["component"]}


def test_a_stable_ct_study_becomes_a_report_an_observation_and_an_sr(stack: Stack) -> None:
    _sync(stack)
    queued = jobs.listing(stack.store.writer)
    assert len(queued) == 2 and {j.status for j in queued} == {"queued"}
    worker = _worker(stack)
    assert worker.drain() == 2
    for p in stack.patients:
        study_uid = ct_series(p, SEED)[0].StudyInstanceUID
        job = jobs.get(stack.store.writer, study_uid)
        assert job is not None and job.status == "done", job
        assert job.result is not None and set(job.result["seconds"]) == {
            "fetch", "volume", "infer", "write"
        }  # fmt: skip
        [study] = _search(
            stack.store, "ImagingStudy", ("identifier", f"urn:dicom:uid|urn:oid:{study_uid}")
        )
        reports = _search(stack.store, "DiagnosticReport", ("_tag", "urn:cdss:ai|report"),
                          ("subject", study["subject"]["reference"]))  # fmt: skip
        assert len(reports) == 1
        report = reports[0]
        assert report["identifier"][0]["value"] == f"{study_uid}|{MODEL_NAME}|1"
        assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{study['id']}"}]
        assert report["subject"]["reference"].startswith("Patient/")
        assert report["code"]["coding"][0]["code"] == "18748-4"
        obs_id = report["result"][0]["reference"].split("/")[1]
        [obs] = _search(stack.store, "Observation", ("_id", obs_id))
        assert obs["meta"]["tag"] == [{"system": "urn:cdss:ai", "code": "finding"}]
        assert obs["derivedFrom"] == report["imagingStudy"]
        comps = _components(obs)
        assert comps["model"]["valueString"] == f"{MODEL_NAME}@1"
        assert 0.0 <= comps["probability"]["valueQuantity"]["value"] <= 1.0
        assert (
            comps["series-instance-uid"]["valueString"] == ct_series(p, SEED)[0].SeriesInstanceUID
        )
        present = obs["valueCodeableConcept"]["coding"][0]["code"] == "52101004"
        assert ("location-x" in comps) == present
        sr_series = stack.pacs.search_for_series(study_uid, search_filters={"Modality": "SR"})
        assert len(sr_series) == 1
        [sr] = stack.pacs.search_for_instances(study_uid, sr_series[0]["0020000E"]["Value"][0])
        assert sr["00080016"]["Value"][0] == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D
        assert sr["00080018"]["Value"][0] == job.result["sr_sop_instance_uid"]


def test_the_sr_coming_back_through_the_sync_queues_no_second_job(stack: Stack) -> None:
    before = jobs.counts(stack.store.writer)
    orthanc.wait_for_changes(stack.server, "StableStudy", count=4, timeout=30)  # SRs are stable
    _sync(stack)
    assert jobs.counts(stack.store.writer) == before
    assert _worker(stack).drain() == 0


def test_a_job_claimed_by_a_crashed_worker_runs_again_once(stack: Stack) -> None:
    study_uid = ct_series(stack.patients[0], SEED)[0].StudyInstanceUID
    with stack.store.writer.begin() as conn:
        conn.execute(
            jobs.jobs.update().where(jobs.c.key == study_uid).values(status="queued", attempts=0)
        )
    crashed = jobs.claim(stack.store.writer, "crashed-worker", lease_s=0.2, max_attempts=5)
    assert crashed is not None and crashed.key == study_uid  # claimed, then the process died
    first, second = _worker(stack), _worker(stack)
    assert first.run_once() is None  # the lease still holds: nobody may take it yet
    time.sleep(0.3)
    won: list[Any] = []
    threads = [
        threading.Thread(target=lambda w=w: won.append(w.run_once())) for w in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for j in won if j is not None) == 1  # exactly one re-run
    job = jobs.get(stack.store.writer, study_uid)
    assert job is not None and job.status == "done" and job.attempts == crashed.attempts + 1
    assert not jobs.complete(stack.store.writer, crashed, "crashed-worker", {})  # lease lost
    reports = _search(
        stack.store,
        "DiagnosticReport",
        ("identifier", f"urn:cdss:ai-report|{study_uid}|{MODEL_NAME}|1"),
    )
    assert len(reports) == 1  # the re-run updated the same report (a new version), no copy
    assert job.result is not None and job.result["diagnostic_report"].endswith(reports[0]["id"])


def _variant(p: SyntheticPatient, tag: str) -> list[Dataset]:
    """The patient's CT series under fresh study/series/SOP UIDs (a separate study)."""
    series = ct_series(p, SEED)
    study, ser = generate_uid(entropy_srcs=[tag, "st"]), generate_uid(entropy_srcs=[tag, "se"])
    for k, ds in enumerate(series):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, ser
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
            entropy_srcs=[tag, str(k)]
        )
    return series


def test_bad_inputs_fail_their_jobs_with_a_reason_and_the_worker_goes_on(stack: Stack) -> None:
    p = stack.patients[1]
    mr = _variant(p, "mr")
    for ds in mr:
        ds.Modality, ds.SOPClassUID = "MR", MRImageStorage
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    gap = _variant(p, "gap")
    del gap[10:12]
    corrupt = _variant(p, "corrupt")
    corrupt[5].PixelData = corrupt[5].PixelData[: len(corrupt[5].PixelData) // 3]
    cases = {"mr": mr, "gap": gap, "corrupt": corrupt}
    stable = len(orthanc.wait_for_changes(stack.server, "StableStudy", count=0))
    for series in cases.values():
        for ds in series:
            stack.pacs.upload(_bytes(ds))
    orthanc.wait_for_changes(stack.server, "StableStudy", count=stable + len(cases), timeout=30)
    _sync(stack)  # as in production: the job reads the study's ImagingStudy first
    with stack.store.writer.begin() as conn:
        for series in cases.values():
            jobs.enqueue(
                conn, series[0].StudyInstanceUID, {"study_uid": series[0].StudyInstanceUID}
            )
    # a good study queued after the bad ones: the worker must still get to it
    with stack.store.writer.begin() as conn:
        conn.execute(jobs.jobs.update().where(jobs.c.key == ct_series(p, SEED)[0].StudyInstanceUID)
                     .values(status="queued", next_at=jobs.now_us() + 10**6))  # fmt: skip
    worker = _worker(stack)
    worker.drain()
    time.sleep(1.1)
    worker.drain()
    reasons = {}
    for name, series in cases.items():
        job = jobs.get(stack.store.writer, series[0].StudyInstanceUID)
        assert job is not None and job.status == "failed", (name, job)
        reasons[name] = job.error or ""
    assert "no CT series (modalities: MR)" in reasons["mr"]
    assert "missing slices" in reasons["gap"] and "22.50 mm" in reasons["gap"]
    assert corrupt[5].SOPInstanceUID in reasons["corrupt"]
    good = jobs.get(stack.store.writer, ct_series(p, SEED)[0].StudyInstanceUID)
    assert good is not None and good.status == "done"


def test_the_ct_series_comes_from_the_imaging_study_or_else_from_qido(stack: Stack) -> None:
    study_uid = str(ct_series(stack.patients[0], SEED)[0].StudyInstanceUID)
    pipeline = ImagingPipeline(stack.store, stack.pacs, stack.predictor)
    study = pipeline.imaging_study(study_uid)
    assert any(s["modality"]["code"] == "SR" for s in study["series"])  # the AI's own SR
    expected = str(ct_series(stack.patients[0], SEED)[0].SeriesInstanceUID)
    assert pipeline.ct_series_uid(study_uid, study) == expected
    bare = {k: v for k, v in study.items() if k != "series"}  # e.g. an upstream store's copy
    assert pipeline.ct_series_uid(study_uid, bare) == expected  # asked of the PACS by QIDO-RS
    with pytest.raises(NotReady, match="no ImagingStudy"):
        pipeline.imaging_study(generate_uid())
