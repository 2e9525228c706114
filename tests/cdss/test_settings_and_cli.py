"""Settings are validated at start; the CLI starts a real server that answers FHIR."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cdss.cli import app
from cdss.settings import SettingsError, load_settings
from tests.support.postgres import free_port


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSS_PORT", "99999")
    monkeypatch.setenv("CDSS_DATABASE_URL", "not a url")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "CDSS_PORT" in str(info.value)
    assert "CDSS_DATABASE_URL" in str(info.value)


def test_cli_refuses_bad_settings_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSS_MAX_BODY_BYTES", "12")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "CDSS_MAX_BODY_BYTES" in result.output


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'cdss.db'}"
    key = settings.cursor_key()
    assert key == load_settings(data_dir=tmp_path).cursor_key()  # stable across processes
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"


def test_cdss_demo_serves_the_synced_cohort_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    while any(_taken(port + k) for k in (1, 2)):
        port = free_port()
    env = {**os.environ, "CDSS_DATA_DIR": str(tmp_path / "var"), "CDSS_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdss.cli", "demo", "--patients", "6"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                meta = httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, "the demo exited early"
                assert time.monotonic() < deadline, "the demo did not answer within 120 s"
                time.sleep(0.2)
        assert meta.status_code == 200
        assert meta.json()["fhirVersion"] == "4.0.1"
        assert meta.headers["content-type"].startswith("application/fhir+json")
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["status"] == "ready"
        patients = httpx.get(f"http://127.0.0.1:{port}/fhir/Patient?_summary=count").json()
        assert patients["total"] == 6
        labs = httpx.get(
            f"http://127.0.0.1:{port}/fhir/Observation?category=laboratory&_summary=count"
        ).json()
        assert labs["total"] > 6 * 10
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}/fhir" in out
    assert (tmp_path / "var" / "demo" / "cdss.db").exists()
    assert (tmp_path / "var" / "demo" / "cohort" / "ground_truth.csv").exists()


def _taken(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
