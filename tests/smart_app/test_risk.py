"""The risk page: patient-view at the oncology-risk CDS service (a promoted model trained on the
synthetic cohort), its card with the probability, band, drivers and model card link."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, expect

from tests.smart_app.browser import ehr_launch, screenshot
from tests.smart_app.flow import launch
from tests.smart_app.stack import SmartStack


def test_risk_card_with_drivers_and_model_card(stack: SmartStack) -> None:
    with httpx.Client(timeout=60) as http:
        s = launch(http, stack.launch_url(stack.a.id))
        page = http.get(f"{stack.app_base}/smart/risk", headers=s.headers)
    assert page.status_code == 200, page.text
    summary = re.search(
        r"<h3>Lung cancer risk \(AI, 12 months\): ([0-9.]+) % — (\w+)</h3>", page.text
    )
    assert summary, page.text
    assert 0 < float(summary.group(1)) < 100 and summary.group(2) in {"low", "intermediate", "high"}
    assert "Main drivers of this estimate" in page.text
    assert "Age at index: <strong>" in page.text  # drivers with the patient's values
    assert re.search(r'href="[^"]+/models/oncology-risk/\d+"', page.text)  # the model card
    assert "\\(" not in page.text  # markdown escapes are rendered, not shown


def test_risk_page_in_the_browser(browser: Browser, stack: SmartStack) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        ehr_launch(page, stack.launch_url(stack.a.id) + "&view=risk")
        assert page.url.endswith("/smart/risk")
        expect(page.locator("article.card h3")).to_contain_text("Lung cancer risk (AI, 12 months)")
        expect(page.get_by_role("link", name="Model card", exact=True)).to_be_visible()
        screenshot(page, "risk")
    finally:
        context.close()
