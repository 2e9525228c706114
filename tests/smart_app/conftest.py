"""One SMART stack for the package (Orthanc, OpenEMR simulator, cdss) and one Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.smart_app import browser as chromium
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


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    reason = chromium.missing()
    if reason is not None:
        pytest.fail(reason)
    with chromium.chromium() as b:
        yield b
