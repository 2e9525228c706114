"""OrthancClient against a real Orthanc 1.10.1 + DICOMweb 1.7: REST, QIDO-RS, WADO-RS metadata
and frames, STOW-RS, errors, and retries that give up with a clear error when Orthanc is gone."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest
from pydicom.uid import generate_uid

from adapters.orthanc.client import (
    OrthancClient,
    OrthancError,
    OrthancNotFound,
    OrthancUnavailable,
    redact,
)
from adapters.orthanc.payloads import bulk_data_uri, integer, items, text
from tests.support import orthanc
from tests.support.dicom import CT_IMAGE_STORAGE, CtSeriesSpec, ct_series, to_bytes


@pytest.fixture(scope="module")
def server() -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the Orthanc adapter tests: {reason}")
    with orthanc.orthanc(dicom_server=False) as running:
        yield running


@pytest.fixture
def client(server: orthanc.OrthancServer) -> Iterator[OrthancClient]:
    with OrthancClient(server.url, auth=server.auth, timeout=10, backoff=0.05) as c:
        yield c


def upload(client: OrthancClient, spec: CtSeriesSpec) -> list[str]:
    """Upload a synthetic series by REST; the Orthanc ids of its instances."""
    answers = [client.upload(to_bytes(ds)) for ds in ct_series(spec)]
    assert {a["Status"] for a in answers} == {"Success"}
    return [a["ID"] for a in answers]


def test_system(client: OrthancClient) -> None:
    system = client.system()
    assert system["Version"] == "1.10.1" and system["DicomAet"] == "CDSSTEST"


def test_upload_then_rest_and_qido(client: OrthancClient) -> None:
    spec = CtSeriesSpec(patient_id="MRN-QIDO", accession_number="ACC-Q1", slices=5)
    upload(client, spec)
    page = client.changes(0, limit=1000)
    study_ids = {c.id for c in page.changes if c.change_type == "NewStudy"}
    rest = [client.study(i) for i in study_ids]
    mine = next(s for s in rest if s.study_instance_uid == spec.study_uid)
    assert mine.patient_id == "MRN-QIDO" and len(mine.series) == 1
    assert client.study_series(mine.id)[0].main_dicom_tags["BodyPartExamined"] == "CHEST"

    found = client.search_for_studies(
        search_filters={"AccessionNumber": "ACC-Q1"}, fields=["StudyDescription"]
    )
    assert [text(s, "StudyInstanceUID") for s in found] == [spec.study_uid]
    assert text(found[0], "StudyDescription") == spec.study_description
    assert integer(found[0], "NumberOfStudyRelatedInstances") == 5
    series = client.search_for_series(spec.study_uid, fields=["BodyPartExamined"])
    assert text(series[0], "BodyPartExamined") == "CHEST"
    instances = client.search_for_instances(spec.study_uid)
    assert len(instances) == 5
    assert {text(i, "SOPClassUID") for i in instances} == {CT_IMAGE_STORAGE}


def test_wado_metadata_and_frames(client: OrthancClient) -> None:
    spec = CtSeriesSpec(patient_id="MRN-WADO", slices=2, size=32)
    datasets = ct_series(spec)
    for ds in datasets:
        client.upload(to_bytes(ds))
    metadata = client.retrieve_study_metadata(spec.study_uid)
    assert len(metadata) == 2 and bulk_data_uri(metadata[0], "PixelData")
    one = client.retrieve_instance_metadata(
        spec.study_uid, spec.series_uid, datasets[1].SOPInstanceUID
    )
    assert text(one, "ImagePositionPatient") is not None
    frames = client.retrieve_frames(spec.study_uid, spec.series_uid, datasets[1].SOPInstanceUID)
    assert len(frames) == 1 and frames[0] == datasets[1].PixelData  # 32 x 32 x int16
    pixels = np.frombuffer(frames[0], dtype="<i2").reshape(32, 32)
    assert pixels[16, 16] == 1064 and pixels[0, 0] == 0
    series = client.retrieve_series(spec.study_uid, spec.series_uid)  # one request, all of it
    assert sorted(str(ds.SOPInstanceUID) for ds in series) == sorted(
        str(ds.SOPInstanceUID) for ds in datasets
    )
    by_uid = {str(ds.SOPInstanceUID): ds for ds in series}
    assert by_uid[str(datasets[1].SOPInstanceUID)].PixelData == datasets[1].PixelData
    assert {str(ds.file_meta.TransferSyntaxUID) for ds in series} == {"1.2.840.10008.1.2.1"}
    with pytest.raises(OrthancNotFound):
        client.retrieve_series(spec.study_uid, generate_uid())


def test_stow_rs(client: OrthancClient) -> None:
    spec = CtSeriesSpec(patient_id="MRN-STOW", slices=3)
    datasets = ct_series(spec)
    answer = client.store_instances(datasets)
    stored = items(answer, "ReferencedSOPSequence")
    assert {text(i, "ReferencedSOPInstanceUID") for i in stored} == {
        ds.SOPInstanceUID for ds in datasets
    }
    assert items(answer, "FailedSOPSequence") == []
    assert len(client.search_for_instances(spec.study_uid, spec.series_uid)) == 3


def test_not_found_and_refused_are_not_retried(
    server: orthanc.OrthancServer, client: OrthancClient
) -> None:
    with pytest.raises(OrthancNotFound) as missing:
        client.study("00000000-00000000-00000000-00000000-00000000")
    assert missing.value.status == 404
    with pytest.raises(OrthancNotFound):
        client.retrieve_study_metadata(generate_uid())
    with pytest.raises(OrthancError, match="Bad file format") as bad:
        client.upload(b"not a DICOM file")
    assert bad.value.status == 400
    no_class = ct_series(CtSeriesSpec(slices=1))
    del no_class[0].SOPClassUID
    with pytest.raises(OrthancError) as refused_stow:  # STOW-RS wants SOPClassUID
        client.store_instances(no_class)
    assert refused_stow.value.status == 400
    started = time.monotonic()
    intruder = OrthancClient(server.url, auth=(server.auth[0], "wrong"), backoff=1.0)
    with intruder, pytest.raises(OrthancError) as refused:
        intruder.changes()
    assert refused.value.status == 401 and not isinstance(refused.value, OrthancUnavailable)
    assert time.monotonic() - started < 1.0  # no backoff: a 4xx is final


def test_credentials_never_reach_the_logs(
    server: orthanc.OrthancServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url.replace("http://", f"http://{server.auth[0]}:{server.auth[1]}@")
    with caplog.at_level(logging.DEBUG), OrthancClient(url, attempts=2, backoff=0.01) as c:
        assert c.base_url == server.url  # userinfo moved into the session's auth
        assert c.system()["Version"] == "1.10.1"
        with pytest.raises(OrthancNotFound):
            c.study("nope")
    assert server.auth[1] not in caplog.text
    assert redact(url) == server.url


def test_retries_give_up_with_a_clear_error_when_orthanc_is_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with orthanc.orthanc(dicom_server=False) as doomed:
        c = OrthancClient(doomed.url, auth=doomed.auth, attempts=3, backoff=0.05, timeout=2)
        assert c.changes().last == 0
        doomed.stop()
        with caplog.at_level(logging.WARNING), pytest.raises(OrthancUnavailable) as gone:
            c.changes(0)
        c.close()
    message = str(gone.value)
    assert doomed.url in message and "GET /changes" in message and "after 3 attempts" in message
    assert caplog.text.count("retry") == 2  # attempts 1 and 2 were retried, 3 gave up
    assert doomed.auth[1] not in caplog.text
    with pytest.raises(OrthancUnavailable):  # DICOMweb calls share the policy
        OrthancClient(doomed.url, attempts=2, backoff=0.01).search_for_studies()
