"""`cdss sync` in the `dicomweb` profile against the real Orthanc's DICOMweb plugin: the first
run creates the studies, a study deleted on the PACS is deleted at the next reconciliation,
and the summary table shows it in its `deleted` column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from adapters.dicomweb.client import DicomwebClient
from cdss.cli import app
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series


@pytest.fixture(scope="module")
def server() -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required: {reason}")
    with orthanc.orthanc(dicom_server=False) as running:
        yield running


def row(output: str, rtype: str) -> list[str]:
    line = next(x for x in output.splitlines() if rtype in x)
    return [c.strip() for c in line.split("│") if c.strip()]


def test_cdss_sync_shows_a_pacs_deletion(
    server: orthanc.OrthancServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = CtSeriesSpec(patient_id="MRN-CLI-K", slices=1)
    drop = CtSeriesSpec(patient_id="MRN-CLI-D", slices=1)
    with DicomwebClient(server.dicomweb_url, auth=server.auth, timeout=10) as client:
        client.store_instances([*ct_series(keep), *ct_series(drop)])
    for name in ("CDSS_OPENEMR_URL", "CDSS_SENAITE_URL", "CDSS_ORTHANC_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "CDSS_DATA_DIR": str(tmp_path),
        "CDSS_DATABASE_URL": f"sqlite:///{tmp_path / 'cdss.db'}",
        "CDSS_PACS_PROFILE": "dicomweb",
        "CDSS_PACS_URL": server.dicomweb_url,
        "CDSS_PACS_USER": server.auth[0],
        "CDSS_PACS_PASSWORD": server.auth[1],
        "CDSS_PACS_RECONCILE_INTERVAL": "0.001",  # every run reconciles
        "COLUMNS": "160",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    first = CliRunner().invoke(app, ["sync", "--source", "pacs"])
    assert first.exit_code == 0, first.output
    assert row(first.output, "ImagingStudy")[:3] == ["pacs", "ImagingStudy", "2"]

    with httpx.Client(base_url=server.url, auth=server.auth) as http:  # the PACS admin's delete
        [hit] = http.post("/tools/lookup", content=drop.study_uid).json()
        http.delete(f"/studies/{hit['ID']}").raise_for_status()
    second = CliRunner().invoke(app, ["sync", "--source", "pacs"])
    assert second.exit_code == 0, second.output
    header = next(x for x in second.output.splitlines() if "deleted" in x)
    assert [c.strip() for c in header.split("┃") if c.strip()][-1] == "deleted"
    cells = row(second.output, "ImagingStudy")
    assert cells[-1] == "1" and cells[2] == "0"  # one deleted, nothing created
