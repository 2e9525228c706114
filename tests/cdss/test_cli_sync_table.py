"""`cdss sync`: the summary table shows deletions; no source configured names CDSS_PACS_URL."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cdss.cli import app
from cdss.cli_data import _summary
from fhir_facade.sync.engine import SyncReport

SOURCE_VARS = (
    "CDSS_OPENEMR_URL",
    "CDSS_SENAITE_URL",
    "CDSS_ORTHANC_URL",
    "CDSS_PACS_URL",
    "CDSS_PACS_PROFILE",
)


def test_the_table_has_a_deleted_column() -> None:
    report = SyncReport("pacs")
    report.counts["ImagingStudy"].created = 2
    report.counts["ImagingStudy"].deleted = 3
    console = Console(width=120, record=True)
    console.print(_summary([report]))
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "deleted" in line)
    row = next(line for line in lines if "ImagingStudy" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    columns = [c.strip() for c in header.split("┃") if c.strip()]
    assert columns[-1] == "deleted" and cells[-1] == "3" and cells[2] == "2"


def test_no_source_names_the_pacs_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SOURCE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no .env file
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "CDSS_PACS_URL" in result.output and "CDSS_OPENEMR_URL" in result.output
