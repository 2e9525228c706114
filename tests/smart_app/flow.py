"""An EHR launch driven over plain HTTP (httpx), as a browser would follow it.

The session cookie is `Secure`, which http.cookiejar never sends over http://, so it is carried
by hand: what the browser tests check with Chromium's real cookie handling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from simulators.openemr.oauth.context import DEFAULT_ADMIN
from smart_app.sessions import COOKIE


@dataclass
class Launched:
    cookie: str
    landing: str  # where the callback redirected

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.cookie}"}


def session_cookie(response: httpx.Response) -> str:
    match = re.search(rf"{COOKIE}=([^;]+)", response.headers.get("set-cookie", ""))
    assert match, f"no session cookie in {response.headers}"
    return match.group(1)


def authorize(http: httpx.Client, launch_url: str) -> tuple[str, str]:
    """Follow the launch to the EHR's login, log in; (cookie, callback URL with code+state)."""
    start = http.get(launch_url)
    assert start.status_code == 302, start.text
    cookie = session_cookie(start)
    login = http.get(start.headers["location"])
    assert login.status_code == 200, login.text
    action = re.search(r'<form method="post" action="([^"]+)"', login.text)
    request_id = re.search(r'name="request_id" value="([^"]+)"', login.text)
    assert action and request_id, login.text
    form = {
        "request_id": request_id.group(1),
        "username": DEFAULT_ADMIN.username,
        "password": DEFAULT_ADMIN.password,
        "action": "approve",
    }
    decided = http.post(action.group(1), data=form)
    assert decided.status_code in (302, 303), decided.text
    return cookie, decided.headers["location"]


def launch(http: httpx.Client, launch_url: str) -> Launched:
    cookie, callback = authorize(http, launch_url)
    done = http.get(callback, headers={"Cookie": f"{COOKIE}={cookie}"})
    assert done.status_code == 303, done.text
    return Launched(cookie, done.headers["location"])


def code_and_state(callback: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(callback).query)
    return query["code"][0], query["state"][0]
