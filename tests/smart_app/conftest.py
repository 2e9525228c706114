"""One SMART stack per test module (Orthanc, OpenEMR simulator, cdss) and a Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smart_app.stack import SmartStack, smart_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmartStack]:
    try:
        with smart_stack(tmp_path_factory.mktemp("smart")) as s:
            yield s
    except RuntimeError as exc:
        if "Orthanc is required" in str(exc):
            pytest.fail(str(exc))
        raise
