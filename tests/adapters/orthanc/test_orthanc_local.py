"""The local Orthanc launcher (adapters/orthanc/local.py): authentication on, DICOMweb mounted, the
Modality Worklists plugin answering C-FIND (checked with dcmtk's findscu, an independent client),
and a clean stop by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from adapters.orthanc import local as orthanc
from tests.support.postgres import free_port

WORKLIST_FIND = UID("1.2.840.10008.5.1.4.31")  # Modality Worklist Information Model - FIND


@pytest.fixture(autouse=True)
def needs_orthanc() -> None:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the Orthanc adapter tests: {reason}")


def worklist_item(accession: str) -> Dataset:
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledStationAETitle = "CT01"
    step.ScheduledProcedureStepStartDate = "20240115"
    step.ScheduledProcedureStepDescription = "CT CHEST"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = WORKLIST_FIND
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID = "DOE^JANE", "MRN-WL-1"
    ds.AccessionNumber = accession
    ds.RequestedProcedureDescription = "CT CHEST WITHOUT CONTRAST"
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def test_authentication_and_dicomweb() -> None:
    with orthanc.orthanc(dicom_server=False) as server:
        assert httpx.get(f"{server.url}/system").status_code == 401
        answer = httpx.get(f"{server.dicomweb_url}/studies", auth=server.auth)
        assert answer.status_code == 200 and answer.json() == []
        plugins = httpx.get(f"{server.url}/plugins", auth=server.auth).json()
        assert "dicom-web" in plugins and "worklists" not in plugins
    assert server.process.poll() is not None  # stopped by PID on exit
    assert not server.workdir.exists()


def test_worklists_answer_c_find(tmp_path: Path) -> None:
    if shutil.which("findscu") is None:
        pytest.skip("dcmtk's findscu is not installed (it comes with Debian's orthanc)")
    worklists = tmp_path / "worklists"
    worklists.mkdir()
    worklist_item("A-WL-1").save_as(worklists / "a-wl-1.wl", enforce_file_format=True)
    answers = tmp_path / "answers"
    answers.mkdir()
    with orthanc.orthanc(worklists_dir=worklists) as server:
        plugins = httpx.get(f"{server.url}/plugins", auth=server.auth).json()
        assert "worklists" in plugins
        echo = subprocess.run(
            ["echoscu", "-aec", server.aet, "127.0.0.1", str(server.dicom_port)],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert echo.returncode == 0, echo.stderr
        find = subprocess.run(
            [
                "findscu",
                "-W",
                "-aec",
                server.aet,
                "-X",
                "-od",
                str(answers),
                "-k",
                "AccessionNumber",
                "-k",
                "PatientID",
                "-k",
                "ScheduledProcedureStepSequence[0].Modality=CT",
                "127.0.0.1",
                str(server.dicom_port),
            ],
            capture_output=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
        )
        assert find.returncode == 0, find.stderr
    found = [dcmread(p) for p in sorted(os.scandir(answers), key=lambda e: e.name)]
    assert [(ds.AccessionNumber, ds.PatientID) for ds in found] == [("A-WL-1", "MRN-WL-1")]


def test_a_taken_port_is_retried_on_fresh_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process may grab the port between our probe and Orthanc's bind (pitfall 6)."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, taken])  # first attempt: HTTP and DICOM on a busy port
        monkeypatch.setattr(orthanc, "free_port", lambda: next(ports, None) or free_port())
        with orthanc.orthanc(dicom_server=False) as server:
            assert str(taken) not in server.url
            assert "HTTP server listening" in server.log_path.read_text()
            assert httpx.get(f"{server.url}/system", auth=server.auth).status_code == 200


def test_a_start_failure_carries_the_log_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(orthanc, "free_port", lambda: taken)
        starting = orthanc.orthanc(dicom_server=False)
        with pytest.raises(orthanc.OrthancStartError, match=str(taken)) as failed, starting:
            pass
    assert "already in use" in str(failed.value)  # the tail of Orthanc's own log
