"""Benchmark of the SMART app in headless Chromium on loopback (issue 8).

Figures, each the median (and max) of N interleaved rounds, each round in a fresh browser
context (cold cache, new session):

* launch -> orders page: from opening the EHR launch URL to the order page's script being ready
  (discovery, authorize redirect, the EHR's login form filled and submitted by the script,
  callback with the token exchange, the page with its patient read from the facade);
* study click -> first frame: from the click on the study in the imaging list to dwv's first
  `renderend` (the viewer page and its scripts, the whole series by WADO-RS through the proxy's
  patient check, decoding, drawing), to the series fully loaded, and the same click a second
  time in the same context (scripts cached, as for a clinician's second study);

against floors measured in the same run, same browser, same loopback: a static page of the same
byte size as the order page (the cost of a page load as such), and a static page of the viewer
page's size that fetches a static body of the series' byte size and draws one canvas (the cost
of moving the same bytes without any SMART, FHIR, DICOMweb or decoding work).

The stack is the tests' (tests/smart_app/stack.py): the OpenEMR simulator as EHR, a real Orthanc
with a 32-slice CT series per patient, the facade requiring tokens.

    .venv/bin/python bench/smart.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.smart_app.browser import chromium, ehr_launch
from tests.smart_app.flow import launch
from tests.smart_app.stack import SmartStack, smart_stack
from tests.support.server import serve

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'


def sizes(stack: SmartStack) -> tuple[int, int, int]:
    """Bytes of the order page, of the viewer page, of the series' WADO-RS answer."""
    with httpx.Client(timeout=60) as http:
        s = launch(http, stack.launch_url(stack.a.id))
        orders = len(http.get(f"{stack.app_base}/smart/orders", headers=s.headers).content)
        viewer = len(
            http.get(
                f"{stack.app_base}/smart/imaging/{stack.a.study_id}", headers=s.headers
            ).content
        )
        series = (
            f"{stack.app_base}/dicom-web/studies/{stack.a.study_uid}/series/{stack.a.series_uid}"
        )
        body = http.get(series, headers={**s.headers, "Accept": ACCEPT}).content
    return orders, viewer, len(body)


def floor_app(orders_bytes: int, viewer_bytes: int, series_bytes: int) -> FastAPI:
    app = FastAPI()
    filler = "<!-- " + "x" * max(0, orders_bytes - 200) + " -->"
    ready = "<script>document.body.dataset.ready='1'</script>"
    page = f"<!doctype html><html><body><h1>Orders</h1>{filler}{ready}</body></html>"
    script = (
        "<canvas id=c width=512 height=512></canvas><script>"
        "fetch('/blob').then(r=>r.arrayBuffer()).then(b=>{const x=document.getElementById('c')"
        ".getContext('2d');const d=x.createImageData(512,512);const v=new Uint8Array(b);"
        "for(let i=0;i<d.data.length;i+=4){d.data[i]=d.data[i+1]=d.data[i+2]=v[i%v.length];"
        "d.data[i+3]=255}x.putImageData(d,0,0);requestAnimationFrame(()=>"
        "{document.body.dataset.drawn='1'})})</script>"
    )
    viewer_filler = "<!-- " + "y" * max(0, viewer_bytes - len(script) - 200) + " -->"
    viewer = f"<!doctype html><html><body>{viewer_filler}{script}</body></html>"
    blob = bytes(range(256)) * (series_bytes // 256 + 1)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/orders")
    def orders() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/viewer")
    def viewer_page() -> HTMLResponse:
        return HTMLResponse(viewer)

    @app.get("/blob")
    def blob_body() -> Response:
        return Response(blob[:series_bytes], media_type="application/octet-stream")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, list[float]] = {
        k: []
        for k in ("launch", "floor_page", "first_frame", "loaded", "warm_frame", "floor_frame")
    }
    with smart_stack(Path(tempfile.mkdtemp(prefix="bench-smart-"))) as stack:
        orders_b, viewer_b, series_b = sizes(stack)
        with serve(floor_app(orders_b, viewer_b, series_b)) as floor, chromium() as browser:
            for _ in range(args.rounds):
                ctx = browser.new_context(viewport={"width": 1024, "height": 768})
                page = ctx.new_page()
                t0 = time.perf_counter()
                ehr_launch(page, stack.launch_url(stack.a.id))
                page.wait_for_selector("body[data-orders-ready='1']", state="attached")
                results["launch"].append(time.perf_counter() - t0)
                page.goto(f"{stack.app_base}/smart/imaging")
                link = page.get_by_role("link", name="CT CHEST WO CONTRAST")
                t0 = time.perf_counter()
                link.click()
                page.wait_for_selector("#viewer[data-first-frame-ms]", state="attached")
                results["first_frame"].append(time.perf_counter() - t0)
                page.wait_for_selector("#viewer[data-ready='1']", state="attached")
                results["loaded"].append(time.perf_counter() - t0)
                page.goto(f"{stack.app_base}/smart/imaging")  # again, scripts now cached
                t0 = time.perf_counter()
                page.get_by_role("link", name="CT CHEST WO CONTRAST").click()
                page.wait_for_selector("#viewer[data-first-frame-ms]", state="attached")
                results["warm_frame"].append(time.perf_counter() - t0)
                ctx.close()
                ctx = browser.new_context(viewport={"width": 1024, "height": 768})
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(f"{floor}/orders")
                page.wait_for_selector("body[data-ready='1']", state="attached")
                results["floor_page"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                page.goto(f"{floor}/viewer")
                page.wait_for_selector("body[data-drawn='1']", state="attached")
                results["floor_frame"].append(time.perf_counter() - t0)
                ctx.close()

    def ms(key: str) -> str:
        v = results[key]
        return f"median {statistics.median(v) * 1000:7.1f} ms  max {max(v) * 1000:7.1f} ms"

    print(f"SMART app, headless Chromium on loopback, {args.rounds} rounds (cold contexts)")
    print(f"  sizes: order page {orders_b} B, viewer page {viewer_b} B, series {series_b} B")
    print(f"  launch URL -> orders page ready : {ms('launch')}")
    print(f"  floor: static page, same size   : {ms('floor_page')}")
    print(f"  study click -> first frame      : {ms('first_frame')}")
    print(f"  study click -> series loaded    : {ms('loaded')}")
    print(f"  same, second study view (warm)  : {ms('warm_frame')}")
    print(f"  floor: static page + same bytes : {ms('floor_frame')}")
    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"  ratios to floor: launch {med['launch'] / med['floor_page']:.1f}x, "
        f"first frame {med['first_frame'] / med['floor_frame']:.1f}x"
    )
    print(
        f"  goal (issue 8): first view <= 1 s on loopback: "
        f"launch {'met' if med['launch'] <= 1 else 'NOT met'}, "
        f"first frame {'met' if med['first_frame'] <= 1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
