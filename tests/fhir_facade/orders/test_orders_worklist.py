"""Imaging orders through the real Orthanc with its Modality Worklists plugin: pynetdicom plays
the modality (C-FIND MWL, then C-STORE of the acquired study with the order's accession number),
the Orthanc sync brings the study in, and the order completes; dcmtk's findscu cross-checks."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, ModalityWorklistInformationFind  # type: ignore[attr-defined]

from adapters.orthanc.client import OrthancClient
from adapters.orthanc.source import OrthancSource
from fhir_facade.orders.intake import ACCESSION_SYSTEM
from fhir_facade.orders.worker import Worker
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import cursor_key, sync_source
from tests.fhir_facade.orders.conftest import order, read, rows, settings
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required: {reason}")
    with orthanc.orthanc(worklists_dir=tmp_path / "worklists") as server:
        yield server


def _find(server: orthanc.OrthancServer, modality: str = "CT") -> list[Dataset]:
    query = Dataset()
    query.PatientID = ""
    query.PatientName = ""
    query.AccessionNumber = ""
    query.RequestedProcedureDescription = ""
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = ""
    query.ScheduledProcedureStepSequence = [step]
    ae = AE(ae_title="CT01")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established
    found = [
        ds
        for status, ds in assoc.send_c_find(query, ModalityWorklistInformationFind)
        if status and status.Status in (0xFF00, 0xFF01) and ds is not None
    ]
    assoc.release()
    return found


def _store(server: orthanc.OrthancServer, mrn: str, accession: str) -> None:
    ae = AE(ae_title="CT01")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=server.aet)
    assert assoc.is_established
    for ds in ct_series(CtSeriesSpec(patient_id=mrn, accession_number=accession, slices=2)):
        assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()


def _sync(store: SqlStore, server: orthanc.OrthancServer) -> None:
    client = OrthancClient(server.url, auth=server.auth)
    source = OrthancSource(
        client, dicomweb_public_url=server.dicomweb_url, base_url=server.url, fetchers=1
    )
    sync_source(store, source)
    client.close()


def test_worklist_item_found_then_study_completes_the_order(
    fhir: TestClient,
    store: SqlStore,
    patient_id: str,
    pacs: orthanc.OrthancServer,
    tmp_path: Path,
) -> None:
    created = fhir.post("/ServiceRequest", json=order(patient_id, "29252-4"))
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    worker = Worker(store, settings(tmp_path, orders_station_aet="CT01"))
    assert worker.run_once().routed == 1
    (row,) = rows(store)
    accession = row.key
    assert (tmp_path / "worklists" / f"{accession}.wl").exists()
    sr = read(fhir, order_id)
    assert {"system": ACCESSION_SYSTEM, "value": accession} in [
        {k: i[k] for k in ("system", "value")} for i in sr["identifier"]
    ]

    (item,) = _find(pacs)
    assert (item.AccessionNumber, item.PatientID) == (accession, "MRN-100")
    assert str(item.PatientName) == "DOE^JANE"
    assert item.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT01"
    assert _find(pacs, "MR") == []

    if shutil.which("findscu"):
        answers = tmp_path / "answers"
        answers.mkdir()
        done = subprocess.run(
            ["findscu", "-W", "-aec", pacs.aet, "-X", "-od", str(answers), "-k",
             f"AccessionNumber={accession}", "-k", "PatientID",
             "127.0.0.1", str(pacs.dicom_port)],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(list(answers.iterdir())) == 1

    assert worker.run_once().completed == 0  # nothing acquired yet
    _store(pacs, "MRN-100", accession)
    orthanc.wait_for_changes(pacs, "StableStudy", timeout=30)
    _sync(store, pacs)
    assert worker.run_once().completed == 1
    sr = read(fhir, order_id)
    assert sr["status"] == "completed" and sr["meta"]["versionId"] == "3"
    studies = fhir.get("/ImagingStudy", params={"identifier": accession}).json()["entry"]
    based_on = studies[0]["resource"]["basedOn"]
    assert {"reference": f"ServiceRequest/{order_id}"} in based_on
    assert [r.state for r in rows(store)] == ["closed"]
    version = studies[0]["resource"]["meta"]["versionId"]
    with store.unit() as unit:  # re-sync everything from Orthanc's first change
        unit.set_state(cursor_key("orthanc"), "0")
    _sync(store, pacs)
    again = fhir.get("/ImagingStudy", params={"identifier": accession}).json()["entry"]
    assert {"reference": f"ServiceRequest/{order_id}"} in again[0]["resource"]["basedOn"]
    assert again[0]["resource"]["meta"]["versionId"] == version  # the link was not dropped
    worker.close()


def test_a_revoked_imaging_order_leaves_the_worklist(
    fhir: TestClient,
    store: SqlStore,
    patient_id: str,
    pacs: orthanc.OrthancServer,
    tmp_path: Path,
) -> None:
    order_id = fhir.post("/ServiceRequest", json=order(patient_id, "24628-0")).json()["id"]
    worker = Worker(store, settings(tmp_path))
    worker.run_once()
    assert len(_find(pacs)) == 1
    sr = read(fhir, order_id)
    assert fhir.put(f"/ServiceRequest/{order_id}", json={**sr, "status": "revoked"}).is_success
    assert worker.run_once().cancelled == 1
    assert _find(pacs) == []
    assert [r.state for r in rows(store)] == ["cancelled"]
    worker.close()
