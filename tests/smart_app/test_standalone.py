"""Standalone launch: the app starts the sign-in itself (no `launch`), asks for `launch/patient`,
and the clinician picks the patient at the EHR's login page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Browser, expect

from simulators.openemr.oauth.context import DEFAULT_ADMIN
from tests.smart_app.browser import screenshot
from tests.smart_app.stack import SmartStack


def test_standalone_authorize_request(stack: SmartStack) -> None:
    with httpx.Client(timeout=30) as http:
        start = http.get(f"{stack.app_base}/smart/standalone")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["location"]).query)
    scopes = query["scope"][0].split()
    assert "launch/patient" in scopes and "launch" not in scopes and "launch" not in query
    assert query["aud"] == [stack.iss] and query["code_challenge_method"] == ["S256"]


def test_standalone_launch_with_the_patient_picker(browser: Browser, stack: SmartStack) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        page.goto(f"{stack.app_base}/smart/standalone")
        page.fill("#username", DEFAULT_ADMIN.username)
        page.fill("#password", DEFAULT_ADMIN.password)
        page.select_option("#patient", label="Ben Test")
        page.click("button[value=approve]")
        page.wait_for_url("**/smart/orders")
        expect(page.get_by_label("Patient")).to_contain_text("Ben Test")
        page.goto(f"{stack.app_base}/smart/imaging")
        expect(page.get_by_role("link", name="CT CHEST WO CONTRAST")).to_have_attribute(
            "href", f"/smart/imaging/{stack.b.study_id}"
        )
        screenshot(page, "standalone-imaging")
    finally:
        context.close()
