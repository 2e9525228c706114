"""The app inside the EHR's iframe, cross-site (the EHR page on `localhost`, the app on
`127.0.0.1`): the launch, the EHR login inside the frame, the callback and the pages must keep
one session, which takes a `SameSite=None; Secure; Partitioned` cookie (client-js #115)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser, expect

from simulators.openemr.oauth.context import DEFAULT_ADMIN
from tests.smart_app.browser import screenshot
from tests.smart_app.stack import SmartStack
from tests.support.server import serve


@pytest.fixture(scope="module")
def ehr_page() -> Iterator[str]:
    """An 'EHR dashboard' on another site that frames whatever `?src=` names."""
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/dashboard")
    def dashboard(src: str) -> HTMLResponse:
        frame = (
            f'<iframe id="app" title="SMART app" src="{src}" width="1000" height="700"></iframe>'
        )
        return HTMLResponse(f"<!doctype html><html><body><h1>EHR</h1>{frame}</body></html>")

    with serve(app) as base:
        yield base.replace("127.0.0.1", "localhost")


def test_launch_and_pages_inside_a_cross_site_iframe(
    browser: Browser, stack: SmartStack, ehr_page: str
) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        from urllib.parse import quote

        page.goto(f"{ehr_page}/dashboard?src={quote(stack.launch_url(stack.a.id), safe='')}")
        frame = page.frame_locator("#app")
        frame.locator("#username").fill(DEFAULT_ADMIN.username)
        frame.locator("#password").fill(DEFAULT_ADMIN.password)
        frame.locator("button[value=approve]").click()
        expect(frame.get_by_role("heading", name="Orders", exact=True)).to_be_visible(timeout=15000)
        frame.get_by_role("link", name="Imaging").click()
        expect(frame.get_by_role("link", name="CT CHEST WO CONTRAST")).to_be_visible()
        screenshot(page, "framed")
    finally:
        context.close()
