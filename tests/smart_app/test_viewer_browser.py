"""The imaging pages in Chromium: EHR launch, the study list, dwv drawing the right study's
pixels (checked against the PACS's own pixel data in the screenshot), window presets, slice
scrolling by keyboard, the AI finding drawn at its pixel, and another patient's study refused."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, FloatRect, Page

from tests.smart_app.browser import ehr_launch, screenshot
from tests.smart_app.stack import SmartStack

LUNG = (-600.0, 1500.0)
MEDIASTINUM = (50.0, 350.0)


def windowed(hu: np.ndarray, centre: float, width: float) -> np.ndarray:
    """What a viewer should show for this window (DICOM PS3.3 C.11.2.1.2, linear)."""
    return np.clip((hu - (centre - width / 2)) / width, 0.0, 1.0) * 255.0


def canvas_pixels(page: Page, size: int) -> np.ndarray:
    """The viewer's drawn image (overlay hidden), block-averaged back to the slice grid."""
    page.evaluate("document.getElementById('overlay').style.visibility='hidden'")
    png = page.locator("#layerGroup0").screenshot()
    page.evaluate("document.getElementById('overlay').style.visibility=''")
    gray = Image.open(io.BytesIO(png)).convert("L").resize((size, size), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def page(browser: Browser, stack: SmartStack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    ehr_launch(page, stack.launch_url(stack.a.id))
    yield page
    context.close()


def open_study(page: Page, stack: SmartStack) -> None:
    page.goto(f"{stack.app_base}/smart/imaging")
    screenshot(page, "imaging-list")
    page.get_by_role("link", name="CT CHEST WO CONTRAST").click()
    page.wait_for_selector("#viewer[data-ready='1'], #viewer[data-error='1']", timeout=30000)
    assert page.get_attribute("#viewer", "data-error") is None, page.inner_text("#viewer-status")


def test_viewer_draws_the_right_study_and_the_ai_finding(page: Page, stack: SmartStack) -> None:
    open_study(page, stack)
    a, b = stack.a, stack.b
    assert a.nodule is not None
    k, row, col = a.nodule
    assert page.inner_text("#slice") == f"Slice {k + 1}"  # opened on the finding's slice
    rows = a.hu.shape[1]
    shown = canvas_pixels(page, rows)
    expected = windowed(a.hu[k], *LUNG)
    assert shown.std() > 40  # an image, not a blank canvas
    assert correlation(shown, expected) > 0.95
    # the right study: the nodule (soft tissue in the lung) is bright where patient A has it,
    # while patient B's same slice is dark lung there
    assert shown[row - 1 : row + 2, col - 1 : col + 2].mean() > 180
    assert windowed(b.hu[k], *LUNG)[row - 1 : row + 2, col - 1 : col + 2].mean() < 140
    # the overlay ring is centred on the finding's pixel, with probability and model
    overlay = page.locator("#overlay")
    assert overlay.is_visible()
    assert "p=0.87" in overlay.inner_text() and "lung-nodule@1.2.0" in overlay.inner_text()
    box = page.locator("#layerGroup0").bounding_box()
    assert box is not None
    x, y = float(overlay.get_attribute("data-x") or 0), float(overlay.get_attribute("data-y") or 0)
    scale = box["width"] / rows
    assert abs(x / scale - (col + 0.5)) < 0.6 and abs(y / scale - (row + 0.5)) < 0.6
    # the ring's right edge (radius 12-14 px): yellow pixels (red and green high, blue low)
    clip: FloatRect = {"x": box["x"] + x + 9, "y": box["y"] + y - 2, "width": 8, "height": 4}
    png = page.screenshot(clip=clip)
    strip = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    yellowness = np.minimum(strip[..., 0], strip[..., 1]) - strip[..., 2]
    assert yellowness.max() > 150
    assert "Pulmonary nodule present (probability 0.87)" in page.inner_text("main")
    screenshot(page, "viewer")


def test_presets_and_keyboard_scrolling(page: Page, stack: SmartStack) -> None:
    a = stack.a
    assert a.nodule is not None
    k = a.nodule[0]
    page.get_by_role("button", name="Mediastinum").click()
    shown = canvas_pixels(page, a.hu.shape[1])
    assert correlation(shown, windowed(a.hu[k], *MEDIASTINUM)) > 0.95
    page.focus("#viewer")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"document.getElementById('slice').textContent === 'Slice {k + 2}'")
    assert not page.locator("#overlay").is_visible()  # the finding is on another slice
    shown = canvas_pixels(page, a.hu.shape[1])
    assert correlation(shown, windowed(a.hu[k + 1], *MEDIASTINUM)) > 0.95
    page.keyboard.press("l")
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"document.getElementById('slice').textContent === 'Slice {k + 1}'")
    assert page.locator("#overlay").is_visible()


def test_another_patients_study_is_refused_in_the_browser(page: Page, stack: SmartStack) -> None:
    answer = page.goto(f"{stack.app_base}/smart/imaging/{stack.b.study_id}")
    assert answer is not None and answer.status == 403
    assert "is not this patient" in page.inner_text("[role=alert]")
    status = page.evaluate(
        "uid => fetch(`/dicom-web/studies/${uid}/series`).then(r => r.status)", stack.b.study_uid
    )
    assert status == 403
    screenshot(page, "refused")
