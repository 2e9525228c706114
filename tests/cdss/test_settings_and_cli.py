"""Settings are validated at start; the CLI starts a real server that answers FHIR."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdss.cli import app
from cdss.settings import SettingsError, load_settings


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
