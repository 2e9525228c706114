"""An export of the warehouse leaves an AuditEvent naming who exported what."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cdss.app import create_app
from cdss.cli import app as cli
from cdss.settings import load_settings
from fhir_facade.security.settings import SecuritySettings
from tests.cdw.cdw_cohort import write_cohort


def test_parquet_export_is_audited(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'facade.db'}"
    write_cohort(database_url, 1)
    env = {
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_DATABASE_URL": database_url,
        "CDSS_CDW_DATABASE_URL": f"sqlite:///{tmp_path / 'cdw.db'}",
        "CDSS_CDW_PSEUDONYM_KEY": "a-long-enough-test-key",
    }
    runner = CliRunner()
    assert runner.invoke(cli, ["etl", "--full"], env=env).exit_code == 0
    result = runner.invoke(cli, ["etl", "export", "--parquet", str(tmp_path / "out")], env=env)
    assert result.exit_code == 0, result.output
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "var")
    security = SecuritySettings(_env_file=None, auth="disabled", audit=False)  # type: ignore[call-arg]
    with TestClient(create_app(settings, security=security)) as http:
        bundle = http.get("/fhir/AuditEvent?_count=10").json()
    (event,) = [e["resource"] for e in bundle["entry"]]
    assert event["type"]["code"] == "110106"  # DICOM: Export
    assert event["subtype"][0]["code"] == "omop-parquet"
    assert event["outcome"] == "0" and str(tmp_path / "out") in event["outcomeDesc"]
    assert event["agent"][0]["who"]["identifier"]["system"] == "urn:cdss:os-user"
