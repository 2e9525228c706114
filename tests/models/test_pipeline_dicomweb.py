"""The imaging pipeline with the PACS in the standard `dicomweb` profile (issue 10), against the
real Orthanc's DICOMweb plugin with its change feed unused: the CT study goes in by STOW-RS,
the QIDO-RS polling sync maps it and queues its job, the worker fetches the series through the
PACS factory's DicomwebClient (QIDO, WADO-RS metadata and frames from an Orthanc 1.7 plugin),
writes the DiagnosticReport + Observation into the facade and STOWs the TID 1500 SR back, which
the next poll syncs into the study without a second job. Fixtures are the pipeline test's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.base import MRN_SYSTEM
from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.factory import PacsNotConfigured, pacs_client
from adapters.dicomweb.protocol import PacsClient
from adapters.dicomweb.settings import PacsSettings
from adapters.dicomweb.source import DicomwebSource
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import SyncReport, sync_source
from models import jobs
from models.imaging.infer import MODEL_NAME, Predictor
from models.imaging.worker import build_worker
from models.registry import ModelRegistry
from simulators.cohort.ct import ct_series
from simulators.cohort.model import SyntheticPatient
from tests.models.test_pipeline import SEED, SETTINGS, _ct_patients, _search, model_dir
from tests.support import orthanc

__all__ = ["model_dir"]  # the pipeline test's promoted tiny model, as a fixture here


@dataclass
class Standard:
    server: orthanc.OrthancServer
    settings: PacsSettings
    pacs: PacsClient
    store: SqlStore
    predictor: Predictor
    patient: SyntheticPatient
    clock: list[float]
    models: Path


@pytest.fixture(scope="module")
def standard(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standard]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required: {reason}")
    tmp = tmp_path_factory.mktemp("pipeline-dicomweb")
    jobs.install(True)
    store = SqlStore(f"sqlite:///{tmp / 'facade.db'}")
    [patient] = _ct_patients(1)
    with orthanc.orthanc(dicom_server=False) as server:
        settings = PacsSettings(
            profile="dicomweb",
            url=server.dicomweb_url,  # the DICOMweb root: nothing Orthanc-specific is used
            user=server.auth[0],
            password=server.auth[1],
            timeout=10,
            attempts=2,
            backoff=0.05,
        )
        pacs = pacs_client(settings)
        assert isinstance(pacs, DicomwebClient)
        with store.unit() as unit:
            unit.create(
                {
                    "resourceType": "Patient",
                    "identifier": [{"system": MRN_SYSTEM, "value": patient.mrn}],
                    "name": [{"family": patient.family, "given": [patient.given]}],
                }
            )
        stored = pacs.store_instances(ct_series(patient, SEED))  # the study in, by STOW-RS
        assert not stored.get("00081198", {}).get("Value")
        predictor = Predictor.promoted(ModelRegistry(model_dir))
        try:
            yield Standard(
                server, settings, pacs, store, predictor, patient, [time.time()], model_dir
            )
        finally:
            pacs.close()
            store.close()
            jobs.install(False)


def _poll(s: Standard) -> SyncReport:
    """One QIDO-RS polling run (a reconciliation each time: the cohort's dates are old)."""
    s.clock[0] += 7200
    client = pacs_client(s.settings)
    try:
        source = DicomwebSource(
            client,
            dicomweb_public_url=f"{s.server.dicomweb_url}",
            base_url=s.server.dicomweb_url,
            reconcile_interval=3600,
            clock=lambda: s.clock[0],
        )
        return sync_source(s.store, source)
    finally:
        client.close()


def test_study_in_report_in_the_facade_and_sr_in_the_pacs(standard: Standard) -> None:
    s = standard
    study_uid = str(ct_series(s.patient, SEED)[0].StudyInstanceUID)
    synced = _poll(s)
    assert synced.counts["ImagingStudy"].created == 1
    job = jobs.get(s.store.writer, study_uid)
    assert job is not None and job.status == "queued"

    worker = build_worker(s.store, SETTINGS, s.models, pacs_settings=s.settings)
    assert isinstance(worker.pipeline.pacs, DicomwebClient)  # the factory's, for this profile
    assert worker.drain() == 1
    job = jobs.get(s.store.writer, study_uid)
    assert job is not None and job.status == "done", job
    assert job.result is not None

    [study] = _search(s.store, "ImagingStudy", ("identifier", f"urn:dicom:uid|urn:oid:{study_uid}"))
    [report] = _search(s.store, "DiagnosticReport", ("_tag", "urn:cdss:ai|report"))
    assert report["identifier"][0]["value"] == f"{study_uid}|{MODEL_NAME}|1"
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{study['id']}"}]
    assert report["subject"]["reference"] == study["subject"]["reference"]
    assert job.result["diagnostic_report"] == f"DiagnosticReport/{report['id']}"

    sr_series = s.pacs.search_for_series(study_uid, search_filters={"Modality": "SR"})
    assert len(sr_series) == 1
    [sr] = s.pacs.search_for_instances(study_uid, sr_series[0]["0020000E"]["Value"][0])
    assert sr["00080016"]["Value"][0] == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D
    assert sr["00080018"]["Value"][0] == job.result["sr_sop_instance_uid"]

    before = jobs.counts(s.store.writer)
    again = _poll(s)  # the SR comes back through the standard sync: the study gains it
    assert again.counts["ImagingStudy"].updated == 1
    [study] = _search(s.store, "ImagingStudy", ("identifier", f"urn:dicom:uid|urn:oid:{study_uid}"))
    assert {m["code"] for m in study["modality"]} == {"CT", "SR"}
    assert jobs.counts(s.store.writer) == before and worker.drain() == 0


def test_the_worker_needs_a_pacs_url(standard: Standard) -> None:
    with pytest.raises(PacsNotConfigured, match="CDSS_PACS_URL"):
        build_worker(
            standard.store, SETTINGS, standard.models, pacs_settings=PacsSettings(url=None)
        )
