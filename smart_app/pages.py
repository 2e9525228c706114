"""Server-rendered HTML: the layout, the patient banner, the error page, the imaging pages.

Pages work without JavaScript for reading (lists, reports, cards); scripts add the viewer and the
live order dialogue. Everything interpolated is HTML-escaped: it comes from the EHR or the PACS.
Readable framed at 1024x768: one column, no fixed widths beyond the viewer's square.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

STATIC = "/smart/static"
NAV = (("orders", "Orders"), ("imaging", "Imaging"), ("risk", "Risk"))


def layout(
    title: str,
    body: str,
    *,
    banner: str = "",
    active: str = "",
    head: str = "",
    status: int = 200,
) -> HTMLResponse:
    nav = "".join(
        f'<a href="/smart/{key}"{" aria-current=page" if key == active else ""}>{label}</a>'
        for key, label in NAV
    )
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · CDSS</title>"
        f'<link rel="stylesheet" href="{STATIC}/app.css">{head}</head><body>'
        f'<header><nav aria-label="Sections">{nav}</nav>{banner}</header>'
        f'<main id="main"><h1>{escape(title)}</h1>{body}</main></body></html>'
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(message: str, status: int) -> HTMLResponse:
    body = f'<p role="alert" class="error">{escape(message)}</p>'
    return layout("Cannot continue", body, status=status)


def patient_banner(patient: Mapping[str, Any]) -> str:
    names = patient.get("name") or [{}]
    name = names[0] if isinstance(names, list) and names else {}
    given = " ".join(name.get("given", [])) if isinstance(name, dict) else ""
    family = name.get("family", "") if isinstance(name, dict) else ""
    born = patient.get("birthDate", "")
    sex = patient.get("gender", "")
    return (
        f'<p class="banner" aria-label="Patient">{escape(given)} {escape(family)}'
        f" · {escape(str(sex))} · born {escape(str(born))}</p>"
    )


def _study_row(study: Mapping[str, Any], ai: bool) -> str:
    sid = escape(str(study.get("id", "")))
    started = escape(str(study.get("started", ""))[:10])
    modality = ", ".join(
        escape(str(m.get("code", ""))) for m in study.get("modality", []) if isinstance(m, dict)
    )
    description = escape(str(study.get("description", "")))
    flag = '<span class="flag" title="AI result available">AI</span>' if ai else ""
    return (
        f"<tr><td>{started}</td><td>{modality}</td>"
        f'<td><a href="/smart/imaging/{sid}">{description or "(no description)"}</a></td>'
        f"<td>{flag}</td></tr>"
    )


def imaging_list(
    studies: Sequence[Mapping[str, Any]], with_ai: set[str], banner: str
) -> HTMLResponse:
    if not studies:
        body = "<p>No imaging studies for this patient.</p>"
    else:
        rows = "".join(_study_row(s, str(s.get("id")) in with_ai) for s in studies)
        body = (
            '<table class="studies"><caption>Imaging studies, newest first</caption>'
            '<thead><tr><th scope="col">Date</th><th scope="col">Modality</th>'
            '<th scope="col">Description</th><th scope="col">AI</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return layout("Imaging", body, banner=banner, active="imaging")


VENDOR = f"{STATIC}/vendor"
IMPORT_MAP = (
    '<script type="importmap">{"imports":{'
    f'"konva":"{VENDOR}/shims/konva.js",'
    f'"jszip":"{VENDOR}/shims/jszip.js",'
    f'"magic-wand-tool":"{VENDOR}/shims/magic-wand.js",'
    f'"dwv":"{VENDOR}/dwv/dwv.min.js"'
    "}}</script>"
    f'<link rel="modulepreload" href="{VENDOR}/dwv/dwv.min.js">'
    f'<script defer src="{VENDOR}/konva/konva.min.js"></script>'
    f'<script defer src="{VENDOR}/jszip/jszip.min.js"></script>'
    f'<script defer src="{VENDOR}/magic-wand-tool/magic-wand.min.js"></script>'
)
"""Deferred classic scripts run, in order, before the (deferred) module scripts that follow, so
the shims find the globals; dwv itself is fetched from the start (modulepreload)."""


def viewer(
    *,
    study: Mapping[str, Any],
    study_uid: str,
    series_uid: str,
    finding: Mapping[str, Any] | None,
    report: str | None,
    banner: str,
) -> HTMLResponse:
    """The dwv viewer page; the finding's location travels as data attributes to viewer.js."""
    attrs = {"study": study_uid, "series": series_uid}
    if finding:
        attrs.update({f"finding-{k}": str(v) for k, v in finding.items() if v is not None})
    data = " ".join(f'data-{k}="{escape(v)}"' for k, v in attrs.items())
    presets = "".join(
        f'<button type="button" data-preset="{p}">{p.capitalize()}</button>'
        for p in ("lung", "mediastinum", "bone")
    )
    if finding:
        prob = float(finding.get("probability") or 0)
        summary = (
            f'<p class="finding">AI finding: <strong>{escape(str(finding.get("label", "")))}'
            f"</strong>, probability <strong>{prob:.2f}</strong>, model "
            f"<code>{escape(str(finding.get('model', '')))}</code></p>"
        )
    else:
        summary = "<p>No AI finding for this study.</p>"
    text = (
        f'<section aria-label="Report"><h2>Report</h2><p>{escape(report)}</p></section>'
        if report
        else ""
    )
    description = escape(str(study.get("description", "")))
    body = (
        f'<p><a href="/smart/imaging">All studies</a> · {description} · '
        f"{escape(str(study.get('started', ''))[:10])}</p>"
        f'<div class="toolbar" role="toolbar" aria-label="Window presets">{presets}'
        '<button type="button" data-step="-1" aria-label="Previous slice">▲</button>'
        '<button type="button" data-step="1" aria-label="Next slice">▼</button>'
        '<span id="slice" aria-live="polite"></span></div>'
        f'<div id="viewer" class="viewer" tabindex="0" aria-label="DICOM viewer" {data}>'
        '<div id="layerGroup0" class="layer-group"></div>'
        '<div id="overlay" class="overlay" hidden></div></div>'
        f'<p id="viewer-status" role="status">Loading images…</p>{summary}{text}'
    )
    head = IMPORT_MAP + f'<script type="module" src="{STATIC}/viewer.js"></script>'
    return layout("Imaging study", body, banner=banner, active="imaging", head=head)
