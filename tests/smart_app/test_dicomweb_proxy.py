"""The patient-scoped DICOMweb proxy against a real Orthanc: QIDO constrained to the patient,
WADO with explicit transfer syntax, another patient's study 403, no or expired session 401,
and an AuditEvent for each access."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from fhir_facade.search.query import parse_search
from smart_app.audit import EVENT_SYSTEM
from tests.smart_app.flow import Launched, launch
from tests.smart_app.stack import SmartStack

ACCEPT_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def session_a(stack: SmartStack, http: httpx.Client) -> Launched:
    return launch(http, stack.launch_url(stack.a.id))


def _count(stack: SmartStack, code: str, outcome: str) -> int:
    query = parse_search(
        "AuditEvent", [("subtype", f"{EVENT_SYSTEM}|{code}"), ("outcome", outcome)]
    )
    query.count = 1000
    with stack.store.read_unit() as unit:
        return len(unit.search(query).matches)


def _audits(stack: SmartStack, code: str, outcome: str, expected: int | None = None) -> int:
    """The AuditEvents of this kind; with `expected`, waits for the recorder's batch (10 s)."""
    deadline = time.monotonic() + 10
    found = _count(stack, code, outcome)
    while expected is not None and found < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        found = _count(stack, code, outcome)
    return found


def _parts(body: bytes, content_type: str) -> list[bytes]:
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    chunks = body.split(b"--" + boundary.encode())[1:-1]
    return [c.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n") for c in chunks]


def test_qido_lists_only_the_patients_studies(
    stack: SmartStack, http: httpx.Client, session_a: Launched
) -> None:
    answer = http.get(f"{stack.app_base}/dicom-web/studies", headers=session_a.headers)
    assert answer.status_code == 200, answer.text
    uids = [row["0020000D"]["Value"][0] for row in answer.json()]
    assert uids == [stack.a.study_uid]
    # asking for the other patient's MRN does not widen the search
    other = http.get(
        f"{stack.app_base}/dicom-web/studies",
        params={"PatientID": stack.b.mrn},
        headers=session_a.headers,
    )
    assert [r["0020000D"]["Value"][0] for r in other.json()] == [stack.a.study_uid]


def test_wado_instance_of_the_patient_is_served_explicit_little_endian(
    stack: SmartStack, http: httpx.Client, session_a: Launched
) -> None:
    a = stack.a
    series = f"{stack.app_base}/dicom-web/studies/{a.study_uid}/series/{a.series_uid}"
    url = f"{series}/instances/{a.sops[3]}"
    before = _audits(stack, "dicomweb-wado", "0")
    answer = http.get(url, headers={**session_a.headers, "Accept": ACCEPT_DICOM})
    assert answer.status_code == 200, answer.text
    (part,) = _parts(answer.content, answer.headers["content-type"])
    ds = dcmread(DicomBytesIO(part))
    assert ds.SOPInstanceUID == a.sops[3] and ds.PatientID == a.mrn
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (ds.pixel_array == a.hu[3]).all()
    assert _audits(stack, "dicomweb-wado", "0", before + 1) == before + 1


def test_another_patients_study_is_refused_and_audited(
    stack: SmartStack, http: httpx.Client, session_a: Launched
) -> None:
    b = stack.b
    before = _audits(stack, "dicomweb-qido", "4"), _audits(stack, "dicomweb-wado", "4")
    for path in (
        f"/dicom-web/studies/{b.study_uid}/series",
        f"/dicom-web/studies/{b.study_uid}/series/{b.series_uid}/instances/{b.sops[0]}",
        f"/dicom-web/studies?StudyInstanceUID={b.study_uid}",
    ):
        answer = http.get(stack.app_base + path, headers=session_a.headers)
        assert answer.status_code == 403, (path, answer.text)
        assert b.mrn.encode() not in answer.content
    assert _audits(stack, "dicomweb-qido", "4", before[0] + 2) == before[0] + 2
    assert _audits(stack, "dicomweb-wado", "4", before[1] + 1) == before[1] + 1


def test_no_session_is_401(stack: SmartStack, http: httpx.Client) -> None:
    answer = http.get(f"{stack.app_base}/dicom-web/studies/{stack.a.study_uid}/series")
    assert answer.status_code == 401
    forged = http.get(
        f"{stack.app_base}/dicom-web/studies", headers={"Cookie": "cdss_smart=not-a-session"}
    )
    assert forged.status_code == 401


def test_expired_session_is_401(stack: SmartStack, http: httpx.Client) -> None:
    launched = launch(http, stack.launch_url(stack.a.id))
    url = f"{stack.app_base}/dicom-web/studies/{stack.a.study_uid}/series"
    assert http.get(url, headers=launched.headers).status_code == 200
    session = stack.smart_state().sessions.get(launched.cookie)
    assert session.tokens.refresh_token is None  # online_access only: no refresh token
    session.tokens.expires_at = 0.0  # the EHR's access token has expired
    answer = http.get(url, headers=launched.headers)
    assert answer.status_code == 401 and "expired" in answer.text
    page = http.get(f"{stack.app_base}/smart/imaging", headers=launched.headers)
    assert page.status_code == 401


def test_unsupported_paths_are_400(
    stack: SmartStack, http: httpx.Client, session_a: Launched
) -> None:
    for path in ("/dicom-web/patients", "/dicom-web/studies/1.2/../../tools"):
        answer = http.get(stack.app_base + path, headers=session_a.headers)
        assert answer.status_code in (400, 404), path


def test_tokens_are_refreshed_before_expiry(stack: SmartStack, http: httpx.Client) -> None:
    settings = stack.smart_state().settings
    saved = settings.scopes_v2
    settings.scopes_v2 = saved + " offline_access"  # the EHR issues a refresh token with it
    try:
        launched = launch(http, stack.launch_url(stack.a.id))
    finally:
        settings.scopes_v2 = saved
    session = stack.smart_state().sessions.get(launched.cookie)
    old = session.tokens
    assert old.refresh_token
    old.expires_at = time.time() + 5  # inside the refresh margin
    url = f"{stack.app_base}/dicom-web/studies/{stack.a.study_uid}/series"
    assert http.get(url, headers=launched.headers).status_code == 200
    assert session.tokens.access_token != old.access_token
    assert session.tokens.expires_at > time.time() + 600
    assert session.tokens.refresh_token and session.tokens.refresh_token != old.refresh_token
