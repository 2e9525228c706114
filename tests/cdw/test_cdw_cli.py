"""`cdss etl` end to end through the CLI: refuses without a key, loads, reports."""

from __future__ import annotations

from pathlib import Path

import orjson
from cdw_cohort import write_cohort
from typer.testing import CliRunner

from cdss.cli import app


def test_cdw_cli_etl_and_report(database_url: str, tmp_path: Path) -> None:
    write_cohort(database_url, 2)
    env = {
        "CDSS_DATA_DIR": str(tmp_path / "var"),
        "CDSS_DATABASE_URL": database_url,
        "CDSS_CDW_DATABASE_URL": f"sqlite:///{tmp_path / 'cdw.db'}",
        "CDSS_CDW_PSEUDONYM_KEY": "",
        "CDSS_CDW_ALLOW_DEV_KEY": "0",
    }
    runner = CliRunner()
    refused = runner.invoke(app, ["etl"], env=env)
    assert refused.exit_code == 2
    env["CDSS_CDW_PSEUDONYM_KEY"] = "a-long-enough-test-key"
    loaded = runner.invoke(app, ["etl", "--full"], env=env)
    assert loaded.exit_code == 0, loaded.output
    assert "30 resources" in loaded.output
    again = runner.invoke(app, ["etl", "--since", "2000-01-01T00:00:00Z"], env=env)
    assert again.exit_code == 0, again.output
    report = runner.invoke(app, ["etl", "report", "--json"], env=env)
    assert report.exit_code == 0, report.output
    body = orjson.loads(report.stdout)
    assert body["rows"]["person"] == 2 and body["ok"] is True
    assert any(u["code"] == "Z99.99" and u["count"] == 2 for u in body["unmapped"])
    table = runner.invoke(app, ["etl", "report"], env=env)
    assert table.exit_code == 0 and "measurement" in table.stdout
