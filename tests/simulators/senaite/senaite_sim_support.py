"""Helpers for the SENAITE simulator tests: the recorded fixtures, a fixed clock, shape diffs."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
API = "/senaite/@@API/senaite/v1"


def fixtures_dir() -> Path:
    """`fixtures/senaite` of the shared material (CDSS_FIXTURES_DIR, ../shared, or ./shared)."""
    candidates = [ROOT.parent / "shared" / "fixtures", ROOT / "shared" / "fixtures"]
    if os.environ.get("CDSS_FIXTURES_DIR"):
        candidates.insert(0, Path(os.environ["CDSS_FIXTURES_DIR"]))
    for base in candidates:
        if (base / "senaite").is_dir():
            return base / "senaite"
    pytest.fail(f"recorded SENAITE fixtures not found in {[str(c) for c in candidates]}")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures_dir() / name).read_text(encoding="utf-8"))
    return data


class Clock:
    """A controllable clock: frozen until advanced (SENAITE stamps `modified` from it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 10, 7, 8, 20, 33, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    return "object"


def shape_diff(recorded: Any, answered: Any, where: str = "$") -> list[str]:
    """Differences in key sets and JSON value types, recursively (list items vs the first one)."""
    if json_type(recorded) != json_type(answered):
        return [f"{where}: recorded {json_type(recorded)}, simulator {json_type(answered)}"]
    problems: list[str] = []
    if isinstance(recorded, dict):
        missing = sorted(set(recorded) - set(answered))
        extra = sorted(set(answered) - set(recorded))
        if missing:
            problems.append(f"{where}: missing keys {missing}")
        if extra:
            problems.append(f"{where}: extra keys {extra}")
        for key in sorted(set(recorded) & set(answered)):
            problems += shape_diff(recorded[key], answered[key], f"{where}.{key}")
    elif isinstance(recorded, list) and recorded:
        if not answered:
            problems.append(f"{where}: recorded a non-empty list, simulator an empty one")
        for i, item in enumerate(answered):
            problems += shape_diff(recorded[0], item, f"{where}[{i}]")
    return problems
