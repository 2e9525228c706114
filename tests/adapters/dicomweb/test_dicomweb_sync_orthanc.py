"""The `dicomweb` profile end to end against the real Orthanc 1.10.1 + DICOMweb 1.7, its change
feed unused: studies stored by STOW-RS, found by QIDO-RS polling, mapped into ImagingStudy in the
facade's store; a second poll syncs nothing; a study that gains an instance is synced again; a
late study with an old date and a deleted study are settled by reconciliation; a restarted sync
resumes from the stored cursor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.factory import pacs_client
from adapters.dicomweb.settings import PacsSettings
from adapters.dicomweb.source import DicomwebSource, imaging_study_ref
from fhir_facade.errors import OperationOutcomeError
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import SyncReport, cursor_key, sync_source
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series

PUBLIC = "http://127.0.0.1:8080/dicom-web"
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")


@pytest.fixture(scope="module")
def server() -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the DICOMweb profile tests: {reason}")
    with orthanc.orthanc(dicom_server=False) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


class Clock:
    """Wall-clock time that a test can move forward (to make a reconciliation due)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def source(server: orthanc.OrthancServer, clock: Clock) -> DicomwebSource:
    client = DicomwebClient(
        server.dicomweb_url, auth=server.auth, timeout=10, backoff=0.05, page_size=2
    )
    return DicomwebSource(
        client,
        dicomweb_public_url=PUBLIC,
        base_url=server.dicomweb_url,
        overlap=3600,
        reconcile_interval=3600,
        clock=clock,
    )


def stow(server: orthanc.OrthancServer, spec: CtSeriesSpec) -> None:
    with DicomwebClient(server.dicomweb_url, auth=server.auth, timeout=10) as client:
        answer = client.store_instances(ct_series(spec))
    assert "00081198" not in answer or not answer["00081198"].get("Value")


def delete_on_pacs(server: orthanc.OrthancServer, study_uid: str) -> None:
    """What a PACS administrator does (Orthanc REST: the only non-DICOMweb call here)."""
    with httpx.Client(base_url=server.url, auth=server.auth) as http:
        found = http.post("/tools/lookup", content=study_uid).json()
        for hit in found:
            if hit["Type"] == "Study":
                http.delete(f"/studies/{hit['ID']}").raise_for_status()


def study(store: SqlStore, uid: str) -> dict[str, Any]:
    ref = imaging_study_ref(uid).split("/", 1)[1]
    with store.unit() as unit:
        stored = unit.read("ImagingStudy", ref)
    found: dict[str, Any] = orjson.loads(stored.content or b"")
    return found


def counts(report: SyncReport, rtype: str = "ImagingStudy") -> tuple[int, int, int, int]:
    c = report.counts.get(rtype)
    return (0, 0, 0, 0) if c is None else (c.created, c.updated, c.unchanged, c.deleted)


def window_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch - 3600).strftime("%Y%m%d")


def today() -> str:
    return datetime.now().strftime("%Y%m%d")


def test_polling_lifecycle(server: orthanc.OrthancServer, store: SqlStore) -> None:
    clock = Clock()
    a = CtSeriesSpec(patient_id="MRN-DW-A", accession_number="ACC-A", study_date=today(), slices=2)
    b = CtSeriesSpec(patient_id="MRN-DW-B", accession_number="ACC-B", study_date=today(), slices=1)
    old = CtSeriesSpec(patient_id="MRN-DW-O", study_date="20010101", slices=1)
    for spec in (a, b, old):
        stow(server, spec)

    first = sync_source(store, source(server, clock))  # first run: a full listing
    assert counts(first) == (3, 0, 0, 0)
    assert counts(first, "Endpoint")[0] == 1
    mapped = study(store, a.study_uid)
    assert mapped["numberOfInstances"] == 2 and mapped["modality"][0]["code"] == "CT"
    assert mapped["subject"]["identifier"]["value"] == "MRN-DW-A"
    assert mapped["endpoint"][0]["reference"].startswith("Endpoint/")

    before = clock.now
    clock.now += 60
    again = sync_source(store, source(server, clock))  # a window poll: nothing new
    assert counts(again) == (0, 0, 0, 0)
    same_day = window_day(before) == window_day(clock.now)
    assert again.batches == (0 if same_day else 1)  # an idle poll rewrites no cursor

    extra = CtSeriesSpec(
        patient_id="MRN-DW-A",
        accession_number="ACC-A",
        study_date=today(),
        slices=1,
        study_uid=a.study_uid,
        series_uid=a.series_uid,
    )
    stow(server, extra)  # study A gains an instance
    c = CtSeriesSpec(patient_id="MRN-DW-C", study_date=today(), slices=1)
    late = CtSeriesSpec(patient_id="MRN-DW-L", study_date="20020202", slices=1)
    stow(server, c)
    stow(server, late)  # an old date: outside every window
    clock.now += 60
    window = sync_source(store, source(server, clock))
    assert counts(window) == (1, 1, 0, 0)
    assert study(store, a.study_uid)["numberOfInstances"] == 3
    study(store, c.study_uid)
    with pytest.raises(OperationOutcomeError):
        study(store, late.study_uid)

    delete_on_pacs(server, b.study_uid)
    clock.now += 3600  # reconciliation due
    settled = sync_source(store, source(server, clock))
    assert counts(settled) == (1, 0, 0, 1)
    study(store, late.study_uid)
    with pytest.raises(OperationOutcomeError) as gone:
        study(store, b.study_uid)
    assert gone.value.status == 410

    # a restart: new client, new source, same store -> resumes from the cursor, syncs nothing
    with store.unit() as unit:
        cursor = unit.get_state(cursor_key("pacs"))
    assert cursor is not None and b.study_uid not in cursor
    assert a.study_uid in cursor and late.study_uid not in cursor  # only the window's studies
    clock.now += 60
    restarted = sync_source(store, source(server, clock))
    assert counts(restarted) == (0, 0, 0, 0)
    clock.now += 3600
    reconciled = sync_source(store, source(server, clock))
    assert counts(reconciled) == (0, 0, 0, 0)


def basic_text_sr(spec: CtSeriesSpec) -> Dataset:
    """A minimal Basic Text SR in the study (what an AI result write-back stores by STOW-RS)."""
    sop = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = BASIC_TEXT_SR, sop, "SR"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.study_uid, generate_uid()
    ds.PatientID, ds.PatientName = spec.patient_id, spec.patient_name
    ds.StudyDate, ds.StudyTime = spec.study_date, spec.study_time
    ds.AccessionNumber, ds.SeriesNumber, ds.InstanceNumber = spec.accession_number, 900, 1
    ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "CONTAINER", "COMPLETE", "UNVERIFIED"
    ds.ContinuityOfContent = "SEPARATE"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "126000", "DCM"
    title.CodeMeaning = "Imaging Measurement Report"
    ds.ConceptNameCodeSequence = [title]
    return ds


def test_an_sr_stored_by_stow_is_synced_into_its_study(
    server: orthanc.OrthancServer, store: SqlStore
) -> None:
    clock = Clock()
    spec = CtSeriesSpec(patient_id="MRN-DW-SR", study_date=today(), slices=1)
    stow(server, spec)
    sync_source(store, source(server, clock))  # this study (and the module's earlier ones)
    assert study(store, spec.study_uid)["numberOfSeries"] == 1
    user, password = server.auth
    pacs = pacs_client(
        PacsSettings(profile="dicomweb", url=server.dicomweb_url, user=user, password=password)
    )
    try:
        stored = pacs.store_instances([basic_text_sr(spec)])
    finally:
        pacs.close()
    assert stored["00081199"]["Value"]  # ReferencedSOPSequence: the SR is in
    clock.now += 60
    assert counts(sync_source(store, source(server, clock))) == (0, 1, 0, 0)
    mapped = study(store, spec.study_uid)
    assert {m["code"] for m in mapped["modality"]} == {"CT", "SR"}
    assert mapped["numberOfSeries"] == 2 and mapped["numberOfInstances"] == 2
