"""DicomwebClient against the real Orthanc's DICOMweb plugin: QIDO paging with limit/offset,
includefield, WADO-RS in an explicit transfer syntax, frames, metadata, STOW-RS, 404; and the
factory giving each profile's client the same DICOMweb surface."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.errors import MalformedAnswer, PacsNotFound
from adapters.dicomweb.factory import pacs_client
from adapters.dicomweb.protocol import EXPLICIT_VR_LITTLE_ENDIAN
from adapters.dicomweb.settings import PacsSettings
from adapters.dicomweb.wire import dicom_json
from adapters.orthanc.client import OrthancClient
from adapters.orthanc.payloads import integer, text
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series

FIVE = CtSeriesSpec(patient_id="MRN-DWC-1", study_description="CT HEAD", slices=5)


@pytest.fixture(scope="module")
def server() -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the DICOMweb client tests: {reason}")
    with orthanc.orthanc(dicom_server=False) as running:
        with DicomwebClient(running.dicomweb_url, auth=running.auth) as client:
            client.store_instances(ct_series(FIVE))
            for n in range(2):
                client.store_instances(ct_series(CtSeriesSpec(patient_id=f"MRN-DWC-{n + 2}")))
        yield running


@pytest.fixture
def client(server: orthanc.OrthancServer) -> Iterator[DicomwebClient]:
    with DicomwebClient(server.dicomweb_url, auth=server.auth, page_size=2, backoff=0.01) as c:
        yield c


def test_qido_pages_with_limit_and_offset(client: DicomwebClient) -> None:
    studies = client.search_for_studies()
    assert len({text(s, "StudyInstanceUID") for s in studies}) == len(studies) == 3
    instances = client.search_for_instances(FIVE.study_uid, fields=("InstanceNumber",))
    assert sorted(integer(i, "InstanceNumber") or 0 for i in instances) == [1, 2, 3, 4, 5]
    assert len(client.search_for_studies(limit=1)) == 1


def test_includefield_asks_for_what_the_server_leaves_out(client: DicomwebClient) -> None:
    only = {"StudyInstanceUID": FIVE.study_uid}
    plain = client.search_for_studies(search_filters=only)
    assert text(plain[0], "StudyDescription") is None  # Orthanc 1.7's default attributes
    asked = client.search_for_studies(search_filters=only, fields=("StudyDescription",))
    assert text(asked[0], "StudyDescription") == "CT HEAD"


def test_wado_in_an_explicit_transfer_syntax(client: DicomwebClient) -> None:
    datasets = client.retrieve_study(FIVE.study_uid)
    assert len(datasets) == 5
    assert {str(d.file_meta.TransferSyntaxUID) for d in datasets} == {EXPLICIT_VR_LITTLE_ENDIAN}
    one = client.search_for_instances(FIVE.study_uid)[0]
    series, sop = text(one, "SeriesInstanceUID") or "", text(one, "SOPInstanceUID") or ""
    frames = client.retrieve_frames(FIVE.study_uid, series, sop)
    assert len(frames) == 1 and len(frames[0]) == FIVE.size * FIVE.size * 2
    metadata = client.retrieve_instance_metadata(FIVE.study_uid, series, sop)
    assert text(metadata, "PatientID") == "MRN-DWC-1"
    instance = client.retrieve_instance(FIVE.study_uid, series, sop)
    assert str(instance.SOPInstanceUID) == sop
    whole = client.retrieve_series(FIVE.study_uid, series)
    assert sorted(str(d.SOPInstanceUID) for d in whole) == sorted(
        str(d.SOPInstanceUID) for d in datasets
    )
    assert {len(d.PixelData) for d in whole} == {FIVE.size * FIVE.size * 2}


def test_unknown_study_is_not_found(client: DicomwebClient) -> None:
    with pytest.raises(PacsNotFound):
        client.retrieve_study_metadata("1.2.3.4.5.6.7.8.9")


def test_factory_gives_each_profile_the_same_surface(server: orthanc.OrthancServer) -> None:
    user, password = server.auth
    legacy = pacs_client(PacsSettings(url=server.url, user=user, password=password))
    standard = pacs_client(
        PacsSettings(profile="dicomweb", url=server.dicomweb_url, user=user, password=password)
    )
    assert isinstance(legacy, OrthancClient) and isinstance(standard, DicomwebClient)
    for client in (legacy, standard):
        try:
            found = client.search_for_studies(search_filters={"StudyInstanceUID": FIVE.study_uid})
            assert len(found) == 1
            with pytest.raises(PacsNotFound):  # OrthancNotFound is a PacsNotFound too
                client.retrieve_study_metadata("1.2.3.4.5.6.7.8.9")
        finally:
            client.close()
    assert legacy.dicomweb_url == standard.dicomweb_url == server.dicomweb_url


def test_settings_say_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="TOKEN_URL"):
        PacsSettings(profile="dicomweb", url="http://pacs/rs", auth="oauth2", client_id="x")
    with pytest.raises(ValidationError, match="CDSS_PACS_TOKEN"):
        PacsSettings(profile="dicomweb", url="http://pacs/rs", auth="bearer")
    assert PacsSettings(url="http://o:8042").dicomweb_url == "http://o:8042/dicom-web"


def test_dicom_json_shape_is_checked() -> None:
    assert dicom_json([{"0020000D": {"vr": "UI", "Value": ["1.2"]}}], "x") != []
    bad_answers: list[object] = [
        {"a": 1},
        ["x"],
        [{"StudyInstanceUID": {"vr": "UI"}}],
        [{"0020000D": {}}],
    ]
    for bad in bad_answers:
        with pytest.raises(MalformedAnswer):
            dicom_json(bad, "QIDO /studies")
