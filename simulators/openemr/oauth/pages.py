"""The few server-rendered pages: login + consent, and the error page of RFC 6749 §4.1.2.1.

OpenEMR shows a login page, then a patient picker (standalone `launch/patient`), then a scope
consent page; the simulator folds them into one form, enough for a person in the demo or a
browser-driving test. Every value is HTML-escaped: client names and scopes are client input.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from simulators.openemr.oauth.context import PatientChoice

_STYLE = (
    "body{font-family:sans-serif;max-width:34rem;margin:2rem auto;color:#222}"
    "label{display:block;margin:.6rem 0 .2rem}input,select{width:100%;padding:.4rem}"
    "ul{background:#f4f4f4;padding:.6rem 1.6rem}.error{color:#a00}"
    "button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}"
)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def login_page(
    *,
    action: str,
    request_id: str,
    client_name: str,
    scopes: Sequence[str],
    patients: Sequence[PatientChoice] | None,
    error: str | None = None,
    username: str = "",
) -> str:
    """The OpenEMR login form with the requested scopes and, when needed, a patient picker."""
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes)
    picker = ""
    if patients is not None:
        options = "".join(
            f'<option value="{escape(uuid)}">{escape(label)}</option>' for uuid, label in patients
        )
        picker = (
            '<label for="patient">Patient</label>'
            f'<select id="patient" name="patient">{options}</select>'
        )
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"{message}<p><strong>{escape(client_name)}</strong> asks for access to:</p>"
        f"<ul>{items}</ul>"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="request_id" value="{escape(request_id)}">'
        f'<label for="username">Username</label>'
        f'<input id="username" name="username" autocomplete="username" value="{escape(username)}">'
        f'<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password">'
        f"{picker}"
        f'<button type="submit" name="action" value="approve">Authorize</button>'
        f'<button type="submit" name="action" value="deny">Deny</button></form>'
    )
    return _page("OpenEMR Login", body)


def error_page(error: str, description: str | None) -> str:
    """Shown, never redirected, when the client or its redirect URI cannot be trusted."""
    detail = f"<p>{escape(description)}</p>" if description else ""
    return _page("Authorization error", f"<p><code>{escape(error)}</code></p>{detail}")


def logout_page() -> str:
    return _page("Logged out", "<p>You have been logged out of OpenEMR.</p>")
