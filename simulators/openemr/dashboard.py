"""The patient dashboard's SMART launch, as OpenEMR's UI does it (source-systems.md §1.10).

OpenEMR's patient summary (`interface/patient_file/summary/demographics.php`) has a card
"SMART Enabled Apps" (`templates/patient/card/smart_launch.html.twig`) listing the enabled clients
whose scopes include `launch` and that have a launch URI. Each entry links to
`interface/smart/ehr-launch-client.php?intent=…&client_id=…`, which seals the current patient
(and encounter) into an opaque `launch` token and redirects to the app's launch URI with
`launch`, `iss` and `aud` (both the FHIR base). OpenEMR takes the patient from the PHP session;
the simulator has no UI login, so the pages carry it as `set_pid` (OpenEMR's own parameter for
opening a patient). The login happens where OpenEMR asks again: at the authorize endpoint.

A patient finder (`interface/main/finder/dynamic_finder.php`) lists the patients with links to
their dashboards, so a person in the demo can pick one.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from simulators.openemr.oauth import OAuthServer
from simulators.openemr.store import OpenEMRStore

DASHBOARD = "/interface/patient_file/summary/demographics.php"
FINDER = "/interface/main/finder/dynamic_finder.php"
LAUNCH = "/interface/smart/ehr-launch-client.php"
INTENTS = frozenset(
    {"main.tab", "patient.demographics.dialog", "encounter.forms.dialog", "appointment.edit.dialog"}
)
_STYLE = (
    "body{font-family:sans-serif;max-width:48rem;margin:1.5rem auto;color:#222}"
    "table{border-collapse:collapse;width:100%}td,th{padding:.3rem .6rem;text-align:left;"
    "border-bottom:1px solid #ddd}.card{border:1px solid #ccc;border-radius:4px;padding:.6rem 1rem;"
    "margin:1rem 0}.card h2{font-size:1.05rem;margin:.2rem 0 .6rem}"
)


def dashboard_url(base: str, pid: int | str) -> str:
    """Where a patient's dashboard lives on a simulator at `base`."""
    return f"{base.rstrip('/')}{DASHBOARD}?{urlencode({'set_pid': pid})}"


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _not_found(what: str) -> HTMLResponse:
    page = _page("Not found", f"<h1>Not found</h1><p>{escape(what)}</p>")
    page.status_code = 404
    return page


def _name(row: dict[str, Any]) -> str:
    return f"{row.get('fname', '')} {row.get('lname', '')}".strip() or "(no name)"


def dashboard_router(store: OpenEMRStore, oauth: OAuthServer) -> APIRouter:
    router = APIRouter(tags=["openemr-dashboard"])

    @router.get(FINDER)
    def finder() -> Response:
        rows = "".join(
            f'<tr><td><a href="{escape(DASHBOARD)}?{urlencode({"set_pid": r["pid"]})}">'
            f"{escape(_name(r))}</a></td><td>{escape(str(r.get('pubpid', '')))}</td>"
            f"<td>{escape(str(r.get('DOB', '')))}</td><td>{escape(str(r.get('sex', '')))}</td></tr>"
            for r in store.rows("patient_data")
            if r.get("pid") not in (None, "")
        )
        return _page(
            "Patient Finder",
            "<h1>Patient Finder</h1><table><tr><th>Name</th><th>External ID</th><th>DOB</th>"
            f"<th>Sex</th></tr>{rows}</table>",
        )

    @router.get(DASHBOARD)
    def dashboard(set_pid: str = "") -> Response:
        row = store.patient_by_pid(set_pid)
        if row is None:
            return _not_found(f"no patient with pid {set_pid!r}")
        apps = "".join(
            '<li><a class="smart-launch" href="{}">{}</a></li>'.format(
                escape(
                    f"{LAUNCH}?"
                    + urlencode(
                        {"intent": "main.tab", "client_id": c.client_id, "set_pid": row["pid"]}
                    )
                ),
                escape(str(c.metadata.get("client_name") or c.client_id)),
            )
            for c in oauth.launchable_apps()
        )
        card = f"<ul>{apps}</ul>" if apps else "<p>No SMART apps are enabled.</p>"
        facts = "".join(
            f"<tr><th>{label}</th><td>{escape(str(row.get(key, '')))}</td></tr>"
            for label, key in (("External ID", "pubpid"), ("DOB", "DOB"), ("Sex", "sex"))
        )
        return _page(
            f"Dashboard: {_name(row)}",
            f'<p><a href="{FINDER}">Patient Finder</a></p><h1>{escape(_name(row))}</h1>'
            f"<table>{facts}</table>"
            f'<div class="card" id="smart-apps"><h2>SMART Enabled Apps</h2>{card}</div>',
        )

    @router.get(LAUNCH)
    def ehr_launch(client_id: str = "", set_pid: str = "", intent: str = "main.tab") -> Response:
        client = oauth.client(client_id)
        if client is None or client not in oauth.launchable_apps():
            return _not_found("no enabled SMART app with that client id and a launch URI")
        row = store.patient_by_pid(set_pid)
        if row is None:
            return _not_found(f"no patient with pid {set_pid!r}")
        if intent not in INTENTS:
            intent = "main.tab"
        token = oauth.create_launch(str(row["uuid"]), intent=intent)
        query = urlencode({"launch": token, "iss": oauth.fhir_base, "aud": oauth.fhir_base})
        separator = "&" if "?" in str(client.launch_uri) else "?"
        return RedirectResponse(f"{client.launch_uri}{separator}{query}", status_code=302)

    return router
