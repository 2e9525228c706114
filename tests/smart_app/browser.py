"""Debian's Chromium driven by Playwright (never `playwright install`), and the EHR launch as a
clinician does it: the EHR opens the launch URL, the user logs in at OpenEMR, the app opens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from simulators.openemr.oauth.context import DEFAULT_ADMIN

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "smart"


def missing() -> str | None:
    if CHROMIUM.exists():
        return None
    return (
        f"{CHROMIUM} not found: the SMART app's browser tests need Debian's Chromium "
        "(`sudo apt-get install chromium`, or `make system-deps` as root)"
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def ehr_launch(page: Page, launch_url: str) -> None:
    """Open the launch URL, log in at the EHR, wait for the app's first page."""
    page.goto(launch_url)
    page.fill("#username", DEFAULT_ADMIN.username)
    page.fill("#password", DEFAULT_ADMIN.password)
    page.click("button[value=approve]")
    page.wait_for_url("**/smart/**")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
