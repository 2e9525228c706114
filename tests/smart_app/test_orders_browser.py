"""The order page in Chromium: selecting a contrast CT for the low-eGFR patient shows the
warning card with its source and suggestion; accepting it changes the draft; signing routes the
order and the page shows its status."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.smart_app.browser import ehr_launch, screenshot
from tests.smart_app.stack import SmartStack


def test_order_dialogue_in_the_browser(browser: Browser, stack: SmartStack) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    try:
        ehr_launch(page, stack.launch_url(stack.a.id))
        assert page.url.endswith("/smart/orders")
        page.wait_for_selector("body[data-orders-ready='1']")
        page.get_by_label("CT Chest W contrast IV").check()
        card = page.locator("article.card.warning", has_text="eGFR 24")
        expect(card).to_be_visible(timeout=15000)
        expect(card).to_contain_text("ACR")
        screenshot(page, "orders-card")
        card.get_by_role("button", name="Accept: Order CT Chest WO contrast instead").click()
        expect(page.locator("#drafts li")).to_have_text(["CT Chest WO contrast"])
        expect(page.get_by_label("CT Chest WO contrast", exact=True)).to_be_checked()
        expect(page.get_by_label("CT Chest W contrast IV")).not_to_be_checked()
        page.get_by_role("button", name="Sign orders").click()
        page.wait_for_function("document.body.dataset.busy === ''")
        if page.get_by_role("button", name="Sign anyway").is_visible():
            page.get_by_role("button", name="Sign anyway").click()
        signed = page.locator("#signed li")
        expect(signed).to_have_count(1, timeout=15000)
        expect(signed).to_contain_text("CT Chest WO contrast: active")
        screenshot(page, "orders-signed")
    finally:
        context.close()
