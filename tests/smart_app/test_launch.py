"""EHR launch over HTTP: discovery, PKCE S256, state bound to the session, token kept server
side, patient context; tampered state, a foreign browser and a verifier-less code fail."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from smart_app.sessions import COOKIE
from tests.smart_app.flow import authorize, code_and_state, launch
from tests.smart_app.stack import SmartStack


@pytest.fixture
def http() -> httpx.Client:
    return httpx.Client(timeout=30)


def test_launch_redirects_to_authorize_with_pkce_state_and_aud(
    stack: SmartStack, http: httpx.Client
) -> None:
    start = http.get(stack.launch_url(stack.a.id))
    assert start.status_code == 302
    target = urlsplit(start.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert target.path == "/oauth2/default/authorize"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["aud"] == stack.iss and query["client_id"] == stack.client_id
    assert len(query["state"]) >= 40  # 32 random bytes, urlsafe base64
    assert "launch" in query["scope"].split() and "user/Patient.rs" in query["scope"].split()
    cookie = start.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=none", "Partitioned"):
        assert flag.lower() in cookie.lower()
    assert "access_token" not in start.text


def test_full_launch_lands_on_orders_with_patient_context(
    stack: SmartStack, http: httpx.Client
) -> None:
    done = launch(http, stack.launch_url(stack.a.id))
    assert done.landing == "/smart/orders"
    page = http.get(f"{stack.app_base}/smart/imaging", headers=done.headers)
    assert page.status_code == 200, page.text
    assert "Ada" in page.text and "CT CHEST WO CONTRAST" in page.text
    assert ">AI<" in page.text  # the study with the AI report is flagged
    assert "eyJ" not in page.text  # no JWT reaches the browser


def test_smart_link_app_context_opens_the_study(stack: SmartStack, http: httpx.Client) -> None:
    extra = (
        f"&view=imaging&imagingStudy=ImagingStudy/{stack.a.study_id}&series={stack.a.series_uid}"
    )
    done = launch(http, stack.launch_url(stack.a.id, extra))
    assert done.landing.startswith(f"/smart/imaging/{stack.a.study_id}?series=")


def test_tampered_state_fails(stack: SmartStack, http: httpx.Client) -> None:
    cookie, callback = authorize(http, stack.launch_url(stack.a.id))
    _code, state = code_and_state(callback)
    forged = callback.replace(f"state={state}", "state=" + ("A" * len(state)))
    answer = http.get(forged, headers={"Cookie": f"{COOKIE}={cookie}"})
    assert answer.status_code == 400 and "state" in answer.text
    # the session is not authorized by the refused callback
    assert (
        http.get(
            f"{stack.app_base}/smart/imaging", headers={"Cookie": f"{COOKIE}={cookie}"}
        ).status_code
        == 401
    )


def test_callback_in_another_browser_fails(stack: SmartStack, http: httpx.Client) -> None:
    _cookie, callback = authorize(http, stack.launch_url(stack.a.id))
    answer = http.get(callback)  # no session cookie: not the browser that started the launch
    assert answer.status_code == 400 and "not started in this browser" in answer.text


def test_code_without_pkce_verifier_is_refused_by_the_ehr(
    stack: SmartStack, http: httpx.Client
) -> None:
    _cookie, callback = authorize(http, stack.launch_url(stack.a.id))
    code, _state = code_and_state(callback)
    secret = stack.emr_app.state.oauth._ctx.store.client(stack.client_id).client_secret
    token = http.post(
        f"{stack.emr_base}/oauth2/default/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{stack.app_base}/smart/callback",
        },
        auth=(stack.client_id, secret),
    )
    assert token.status_code == 400, token.text
    assert token.json()["error"] == "invalid_request" and "verifier" in token.text


def test_unknown_issuer_is_refused(stack: SmartStack, http: httpx.Client) -> None:
    answer = http.get(f"{stack.app_base}/smart/launch?iss=https://evil.example/fhir&launch=x")
    assert answer.status_code == 403 and "not an allowed EHR" in answer.text
