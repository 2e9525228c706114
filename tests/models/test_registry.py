"""The model registry: versions, checksums, promotion, and the CLI over it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from cdss.cli import app as cli
from models.registry import ModelRegistry, RegistryError


def _save(reg: ModelRegistry, payload: bytes = b"weights") -> int:
    return reg.save(
        "demo", {"model.txt": payload}, {"task": "t", "metrics": {"auroc": 0.9}}
    ).version


def test_round_trip_versions_and_promotion(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "models")
    assert reg.names() == []
    src = tmp_path / "extra.bin"
    src.write_bytes(b"\x00\x01")
    first = reg.save("demo", {"model.txt": b"one", "extra.bin": src}, {"task": "risk"})
    second = reg.save("demo", {"model.txt": b"two"}, {"task": "risk"})
    assert (first.version, second.version) == (1, 2)
    assert reg.names() == ["demo"]
    assert [v.version for v in reg.versions("demo")] == [1, 2]
    assert reg.promoted("demo") is None
    got = reg.get("demo", 1)
    assert got.card["task"] == "risk" and got.card["name"] == "demo" and got.card["version"] == 1
    assert set(got.card["files"]) == {"model.txt", "extra.bin"} and got.card["created"]
    assert got.file("model.txt").read_bytes() == b"one"
    assert got.file("extra.bin").read_bytes() == b"\x00\x01"
    promoted = reg.promote("demo", 2)
    assert promoted.promoted and promoted.version == 2
    assert reg.promoted("demo") == reg.get("demo", 2)
    assert [v.promoted for v in reg.versions("demo")] == [False, True]
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "models" / "demo").iterdir())


def test_corrupt_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    version = reg.get("demo", _save(reg))
    (version.path / "model.txt").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="corrupt"):
        version.file("model.txt")
    with pytest.raises(RegistryError, match="corrupt"):
        reg.promote("demo", version.version)
    (version.path / "model.txt").unlink()
    with pytest.raises(RegistryError, match="missing"):
        version.file("model.txt")
    with pytest.raises(RegistryError, match="no file 'other'"):
        version.file("other")
    (version.path / "card.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        reg.get("demo", version.version)


def test_unknown_names_versions_and_dangling_promotion(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "absent")
    with pytest.raises(RegistryError, match="does not exist"):
        reg.get("demo", 1)
    reg = ModelRegistry(tmp_path)
    _save(reg)
    with pytest.raises(RegistryError, match=r"no version 7; versions: \[1\]"):
        reg.get("demo", 7)
    with pytest.raises(RegistryError, match="no model named 'other'"):
        reg.get("other", 1)
    with pytest.raises(RegistryError, match="invalid model name"):
        reg.get("../etc", 1)
    with pytest.raises(RegistryError, match="invalid artifact file name"):
        reg.save("demo", {"../x": b""}, {})
    reg.promote("demo", 1)
    (tmp_path / "demo" / "PROMOTED").write_text("5\n")
    with pytest.raises(RegistryError, match="promoted version 5 is missing"):
        reg.promoted("demo")


def test_cli_list_show_promote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSS_MODELS_DIR", str(tmp_path))
    reg = ModelRegistry(tmp_path)
    _save(reg)
    _save(reg, b"v2")
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert "demo" in listed.output
    no_promoted = runner.invoke(cli, ["models", "show", "demo"])
    assert no_promoted.exit_code == 2 and "no promoted version" in no_promoted.output
    promoted = runner.invoke(cli, ["models", "promote", "demo", "2"])
    assert promoted.exit_code == 0, promoted.output
    shown = runner.invoke(cli, ["models", "show", "demo"])
    card = orjson.loads(shown.stdout)
    assert card["version"] == 2 and card["promoted"] is True
    first = orjson.loads(runner.invoke(cli, ["models", "show", "demo", "--version", "1"]).stdout)
    assert first["version"] == 1 and first["promoted"] is False
    unknown = runner.invoke(cli, ["models", "promote", "demo", "9"])
    assert unknown.exit_code == 2 and "no version 9" in unknown.output
