"""Shared helpers for the OAuth simulator tests (no tests here).

The simulator must know its own URL before it is served (it is the `aud` of client assertions
and the issuer of id tokens), so `serve_oauth` picks the loopback port first and hands it to
`tests.support.server.serve` in place of its own free-port choice.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

import tests.support.server as support_server
from simulators.openemr.oauth import OAuthServer, UserAccount
from tests.support.postgres import free_port

CLINICIAN = UserAccount(
    "drsmith", "s3cret", "Practitioner/9f1b1c2e-0000-4000-8000-000000000001", name="Dr Smith"
)
PORTAL_PATIENT = UserAccount(
    "jdoe",
    "p4ss",
    "Patient/9f1b1c2e-0000-4000-8000-0000000000aa",
    role="patient",
    email="jdoe@example.org",
)
USERS = {u.username: u for u in (CLINICIAN, PORTAL_PATIENT)}
PATIENTS = [
    ("9f1b1c2e-0000-4000-8000-000000000101", "Alpha, Ann"),
    ("9f1b1c2e-0000-4000-8000-000000000102", "Beta, Bob"),
]
REDIRECT = "http://app.example/callback"


class FakeClock:
    """A settable clock shared by the server (and clients) under test."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(start if start is not None else time.time())

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    oauth: OAuthServer
    base: str
    clock: FakeClock
    http: httpx.Client

    @property
    def token_url(self) -> str:
        return f"{self.oauth.oauth_base}/token"


@contextmanager
def serve_oauth(
    *, extra: Callable[[FastAPI, OAuthServer], None] | None = None, **options: Any
) -> Iterator[Env]:
    """Serve an OAuthServer (plus `extra` routes) on loopback; yields the environment."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clock = FakeClock()
    options.setdefault("users", USERS)
    options.setdefault("patient_picker", lambda: PATIENTS)
    oauth = OAuthServer(base, clock=clock, **options)
    app = FastAPI()
    app.include_router(oauth.router())
    if extra is not None:
        extra(app, oauth)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(support_server, "free_port", lambda: port)
        with (
            support_server.serve(app, ready_path="/oauth2/default/jwk") as served,
            httpx.Client(base_url=served, timeout=10) as http,
        ):
            yield Env(oauth, served, clock, http)


def pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def register(env: Env, **metadata: Any) -> dict[str, Any]:
    body = {"client_name": "Test app", "redirect_uris": [REDIRECT], **metadata}
    response = env.http.post("/oauth2/default/registration", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def register_confidential(env: Env, scope: str) -> dict[str, Any]:
    return register(env, application_type="private", scope=scope)


def authorize_params(env: Env, client: dict[str, Any], scope: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "st-" + secrets.token_hex(4),
        "aud": env.oauth.fhir_base,
    }
    params.update(extra)
    return params


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(env: Env, client: dict[str, Any], scope: str, **extra: str) -> tuple[str, str]:
    """Run /authorize on an auto-approving server: (code, verifier)."""
    verifier, challenge = pkce()
    params = authorize_params(
        env, client, scope, code_challenge=challenge, code_challenge_method="S256", **extra
    )
    query = redirect_query(env.http.get("/oauth2/default/authorize", params=params))
    assert query["state"] == params["state"]
    return query["code"], verifier


def exchange(env: Env, client: dict[str, Any], code: str, verifier: str | None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    secret = client.get("client_secret")
    if secret:
        return env.http.post("/oauth2/default/token", data=form, auth=(client["client_id"], secret))
    form["client_id"] = client["client_id"]
    return env.http.post("/oauth2/default/token", data=form)
