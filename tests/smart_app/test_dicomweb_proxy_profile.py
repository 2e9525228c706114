"""The viewer proxy with the PACS in the standard `dicomweb` profile (issue 10): the proxy's
upstream and auth come from PacsSettings, here the real Orthanc's DICOMweb root reached as any
DICOMweb server (no Orthanc REST, no change feed). A second proxy built from those settings
shares the stack's sessions: it serves the patient's study and refuses the other patient's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from adapters.dicomweb.settings import PacsSettings
from cdss.settings import load_settings
from smart_app import dicomweb
from smart_app.app import build_state
from smart_app.config import SmartSettings
from smart_app.pacs import PacsAuth
from tests.smart_app.flow import Launched, launch
from tests.smart_app.stack import SmartStack
from tests.support.server import serve

ACCEPT_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'


@pytest.fixture(scope="module")
def standard_proxy(stack: SmartStack) -> Iterator[str]:
    """The /dicom-web proxy of a state built for CDSS_PACS_PROFILE=dicomweb."""
    pacs = PacsSettings(
        profile="dicomweb",
        url=stack.orthanc.dicomweb_url,  # the DICOMweb service root, as for dcm4chee-arc
        auth="basic",
        user=stack.orthanc.auth[0],
        password=stack.orthanc.auth[1],
    )
    main = stack.smart_state()
    smart = SmartSettings(dicomweb_url=None, dicomweb_user=None, dicomweb_password=None)
    smart = smart.model_copy(update={"client_id": main.settings.client_id})
    settings = load_settings(base_url=main.public_base, secret_key="smart-test")
    state = build_state(settings, smart, None, main.audit, pacs=pacs)
    state.sessions = main.sessions  # sessions launched through the stack's app
    assert state.dicomweb_url == stack.orthanc.dicomweb_url
    assert isinstance(state.dicomweb_auth, PacsAuth)
    proxy = FastAPI()
    proxy.include_router(dicomweb.build_router(state))
    with serve(proxy, "/studies") as base:
        yield base


@pytest.fixture(scope="module")
def session_a(stack: SmartStack) -> Launched:
    with httpx.Client(timeout=30) as http:
        return launch(http, stack.launch_url(stack.a.id))


def test_standard_profile_serves_the_patients_study(
    stack: SmartStack, standard_proxy: str, session_a: Launched
) -> None:
    a = stack.a
    with httpx.Client(timeout=30, headers=session_a.headers) as http:
        listed = http.get(f"{standard_proxy}/studies")
        assert listed.status_code == 200, listed.text
        assert [r["0020000D"]["Value"][0] for r in listed.json()] == [a.study_uid]
        url = f"{standard_proxy}/studies/{a.study_uid}/series/{a.series_uid}/instances/{a.sops[2]}"
        answer = http.get(url, headers={"Accept": ACCEPT_DICOM})
    assert answer.status_code == 200, answer.text
    boundary = answer.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    part = answer.content.split(b"--" + boundary.encode())[1].split(b"\r\n\r\n", 1)[1]
    ds = dcmread(DicomBytesIO(part.rstrip(b"\r\n")))
    assert ds.SOPInstanceUID == a.sops[2] and ds.PatientID == a.mrn
    assert (ds.pixel_array == a.hu[2]).all()


def test_standard_profile_refuses_another_patients_study(
    stack: SmartStack, standard_proxy: str, session_a: Launched
) -> None:
    b = stack.b
    with httpx.Client(timeout=30, headers=session_a.headers) as http:
        for path in (
            f"/studies/{b.study_uid}/series",
            f"/studies/{b.study_uid}/series/{b.series_uid}/instances/{b.sops[0]}",
            f"/studies?StudyInstanceUID={b.study_uid}",
        ):
            answer = http.get(standard_proxy + path)
            assert answer.status_code == 403, (path, answer.text)
            assert b.mrn.encode() not in answer.content


def test_wrong_pacs_credentials_are_not_a_leak(stack: SmartStack, session_a: Launched) -> None:
    """The PACS auth really is what the upstream sees: a wrong password is refused upstream."""
    pacs = PacsSettings(
        profile="dicomweb", url=stack.orthanc.dicomweb_url, user="orthanc", password="wrong"
    )
    main = stack.smart_state()
    smart = SmartSettings(client_id=main.settings.client_id, dicomweb_url=None)
    settings = load_settings(base_url=main.public_base, secret_key="smart-test")
    state = build_state(settings, smart, None, main.audit, pacs=pacs)
    state.sessions = main.sessions
    proxy = FastAPI()
    proxy.include_router(dicomweb.build_router(state))
    with serve(proxy, "/studies") as base, httpx.Client(timeout=30) as http:
        answer = http.get(f"{base}/studies", headers=session_a.headers)
    assert answer.status_code == 401
