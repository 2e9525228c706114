"""Authorization code flow with PKCE, EHR launch and refresh, end to end over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from test_oauth_harness import (
    CLINICIAN,
    PATIENTS,
    PORTAL_PATIENT,
    REDIRECT,
    Env,
    authorize_params,
    exchange,
    get_code,
    pkce,
    redirect_query,
    register,
    register_confidential,
    serve_oauth,
)

from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"
AUTHORIZE = "/oauth2/default/authorize"
EHR_SCOPE = "openid fhirUser launch offline_access user/Patient.read user/Observation.rs api:oemr"


@pytest.fixture
def env() -> Iterator[Env]:
    with serve_oauth(auto_approve=True) as env:
        yield env


def test_code_flow_with_pkce_issues_openemr_shaped_tokens(env: Env) -> None:
    client = register_confidential(env, EHR_SCOPE)
    code, verifier = get_code(env, client, "openid fhirUser offline_access user/Patient.read")
    response = exchange(env, client, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    recorded = json.loads((FIXTURES / "token-response.refresh-grant.json").read_text())
    assert set(recorded) <= set(body)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid fhirUser offline_access user/Patient.read"

    keys = KeySet.import_key_set(env.http.get("/oauth2/default/jwk").json())
    access = jwt.decode(body["access_token"], keys)
    assert access.header["alg"] == "RS256"
    assert access.header["kid"] == keys.keys[0].kid
    assert access.claims["aud"] == client["client_id"]
    assert access.claims["sub"] == CLINICIAN.uuid
    id_token = jwt.decode(body["id_token"], keys).claims
    assert id_token["iss"] == env.oauth.oauth_base
    assert id_token["aud"] == client["client_id"]
    assert id_token["fhirUser"] == CLINICIAN.fhir_user

    grant = env.oauth.verify(body["access_token"])
    assert grant is not None
    assert grant.user == CLINICIAN.fhir_user
    assert grant.scopes == {"openid", "fhirUser", "offline_access", "user/Patient.read"}


def test_public_client_with_pkce_and_no_refresh_without_offline_access(env: Env) -> None:
    client = register(env, scope="openid launch/patient patient/Observation.rs")
    code, verifier = get_code(env, client, "openid launch/patient patient/Observation.rs")
    body = exchange(env, client, code, verifier).json()
    assert "refresh_token" not in body
    assert body["patient"] == PATIENTS[0][0]  # auto-approve takes the picker's first patient
    assert body["need_patient_banner"] is True
    grant = env.oauth.verify(body["access_token"])
    assert grant is not None
    assert grant.patient == PATIENTS[0][0]


def test_tampered_verifier_is_invalid_grant(env: Env) -> None:
    client = register(env, scope="openid patient/Patient.rs")
    code, verifier = get_code(env, client, "openid patient/Patient.rs")
    other, _ = pkce()
    response = exchange(env, client, code, other)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert exchange(env, client, code, verifier).status_code == 200


def test_public_client_must_send_a_verifier(env: Env) -> None:
    client = register(env, scope="openid patient/Patient.rs")
    code, _ = get_code(env, client, "openid patient/Patient.rs")
    response = exchange(env, client, code, None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_reused_code_is_refused_and_revokes_the_first_tokens(env: Env) -> None:
    client = register_confidential(env, "openid offline_access user/Patient.read")
    code, verifier = get_code(env, client, "openid offline_access user/Patient.read")
    first = exchange(env, client, code, verifier).json()
    assert env.oauth.verify(first["access_token"]) is not None
    again = exchange(env, client, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert env.oauth.verify(first["access_token"]) is None
    refresh = env.http.post(
        "/oauth2/default/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_code_expires_after_60_seconds(env: Env) -> None:
    client = register_confidential(env, "openid user/Patient.read")
    code, verifier = get_code(env, client, "openid user/Patient.read")
    env.clock.advance(61)
    response = exchange(env, client, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_ehr_launch_carries_patient_and_encounter(env: Env) -> None:
    client = register_confidential(env, EHR_SCOPE)
    launch = env.oauth.create_launch("pat-uuid-1", "enc-uuid-9", intent="main.tab")
    code, verifier = get_code(env, client, EHR_SCOPE, launch=launch)
    body = exchange(env, client, code, verifier).json()
    recorded = json.loads((FIXTURES / "token-response.ehr-launch.doc.json").read_text())
    # The doc example puts fhirUser beside the token; OpenEMR's code puts it in the id_token.
    assert set(recorded) - {"fhirUser"} <= set(body)
    assert (body["patient"], body["encounter"], body["intent"]) == (
        "pat-uuid-1",
        "enc-uuid-9",
        "main.tab",
    )
    assert body["need_patient_banner"] is False
    assert body["smart_style_url"] == f"{env.base}/public/smart-styles/smart-light.json"
    assert env.http.get(body["smart_style_url"]).status_code == 200
    assert "api:oemr" not in body["scope"].split()  # OpenEMR hides scopes with ':' here
    grant = env.oauth.verify(body["access_token"])
    assert grant is not None
    assert (grant.patient, grant.encounter) == ("pat-uuid-1", "enc-uuid-9")
    assert "api:oemr" in grant.scopes


def test_tampered_launch_is_refused_by_redirect(env: Env) -> None:
    client = register_confidential(env, EHR_SCOPE)
    launch = env.oauth.create_launch("pat-uuid-1")
    params = authorize_params(env, client, EHR_SCOPE, launch=launch[:-4] + "AAAA")
    query = redirect_query(env.http.get(AUTHORIZE, params=params))
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]


def test_refresh_rotates_and_keeps_the_launch_context(env: Env) -> None:
    client = register_confidential(env, EHR_SCOPE)
    launch = env.oauth.create_launch("pat-uuid-1", "enc-uuid-9")
    code, verifier = get_code(env, client, EHR_SCOPE, launch=launch)
    first = exchange(env, client, code, verifier).json()
    auth = (client["client_id"], client["client_secret"])
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = env.http.post("/oauth2/default/token", data=form, auth=auth)
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert (body["patient"], body["encounter"]) == ("pat-uuid-1", "enc-uuid-9")
    assert "id_token" in body
    replay = env.http.post("/oauth2/default/token", data=form, auth=auth)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    narrower = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    narrowed = env.http.post(
        "/oauth2/default/token", data=narrower | {"scope": "openid offline_access"}, auth=auth
    )
    assert narrowed.json()["scope"] == "openid offline_access"


def test_refresh_token_is_bound_to_its_client(env: Env) -> None:
    client = register_confidential(env, "openid offline_access user/Patient.read")
    other = register_confidential(env, "openid offline_access user/Patient.read")
    code, verifier = get_code(env, client, "openid offline_access user/Patient.read")
    refresh = exchange(env, client, code, verifier).json()["refresh_token"]
    response = env.http.post(
        "/oauth2/default/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(other["client_id"], other["client_secret"]),
    )
    assert response.json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(env: Env) -> None:
    client = register_confidential(env, "openid user/Patient.read")
    code, verifier = get_code(env, client, "openid user/Patient.read")
    client = client | {"client_secret": "not-it"}
    response = exchange(env, client, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_secret_post_is_accepted(env: Env) -> None:
    client = register_confidential(env, "openid user/Patient.read")
    code, verifier = get_code(env, client, "openid user/Patient.read")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    assert env.http.post("/oauth2/default/token", data=form).status_code == 200


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
        ({"scope": "openid patient/Imaginary.read"}, "invalid_scope"),
        ({"code_challenge": ""}, "invalid_request"),  # public client without PKCE
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_requests_go_back_to_a_valid_redirect_uri(
    env: Env, change: dict[str, str], error: str
) -> None:
    client = register(env, scope="openid patient/Patient.rs")
    _, challenge = pkce()
    params = authorize_params(env, client, "openid patient/Patient.rs", code_challenge=challenge)
    query = redirect_query(env.http.get(AUTHORIZE, params=params | change))
    assert query["error"] == error
    assert query["state"] == params["state"]


@pytest.mark.parametrize(
    "change", [{"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}]
)
def test_untrusted_client_or_redirect_gets_an_error_page(env: Env, change: dict[str, str]) -> None:
    client = register(env, scope="openid patient/Patient.rs")
    _, challenge = pkce()
    params = authorize_params(env, client, "openid patient/Patient.rs", code_challenge=challenge)
    response = env.http.get(AUTHORIZE, params=params | change)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


def test_authorize_accepts_post(env: Env) -> None:
    client = register(env, scope="openid patient/Patient.rs")
    _, challenge = pkce()
    params = authorize_params(env, client, "openid patient/Patient.rs", code_challenge=challenge)
    assert "code" in redirect_query(env.http.post(AUTHORIZE, data=params))


def test_unregistered_scopes_are_dropped_from_the_grant(env: Env) -> None:
    client = register_confidential(env, "openid user/Patient.read")
    code, verifier = get_code(env, client, "openid user/Patient.read user/Observation.rs")
    assert exchange(env, client, code, verifier).json()["scope"] == "openid user/Patient.read"


# ---------------------------------------------------------------- interactive login page


@pytest.fixture
def interactive() -> Iterator[Env]:
    with serve_oauth() as env:
        yield env


def _login_form(env: Env, scope: str) -> tuple[dict[str, str], str, str]:
    client = register(env, scope=scope)
    _, challenge = pkce()
    params = authorize_params(
        env, client, scope, code_challenge=challenge, code_challenge_method="S256"
    )
    page = env.http.get(AUTHORIZE, params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    match = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert match is not None
    return params, match.group(1), page.text


def test_login_page_lists_scopes_and_patients_and_approves(interactive: Env) -> None:
    params, request_id, html = _login_form(interactive, "openid launch/patient patient/Patient.rs")
    assert "patient/Patient.rs" in html
    assert PATIENTS[1][1] in html
    assert f'value="{PATIENTS[1][0]}"' in html
    form = {"request_id": request_id, "username": CLINICIAN.username, "action": "approve"}
    wrong = interactive.http.post("/oauth2/default/provider/login", data=form | {"password": "x"})
    assert wrong.status_code == 200
    assert "Invalid username or password" in wrong.text
    ok = interactive.http.post(
        "/oauth2/default/provider/login",
        data=form | {"password": CLINICIAN.password, "patient": PATIENTS[1][0]},
    )
    query = redirect_query(ok)
    assert query["state"] == params["state"]
    assert "code" in query


def test_patient_login_is_bound_to_the_patient(interactive: Env) -> None:
    scope = "openid launch/patient patient/Patient.rs"
    client = register(interactive, scope=scope)
    verifier, challenge = pkce()
    params = authorize_params(
        interactive, client, scope, code_challenge=challenge, code_challenge_method="S256"
    )
    page = interactive.http.get(AUTHORIZE, params=params)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id is not None
    login = {
        "request_id": request_id.group(1),
        "username": PORTAL_PATIENT.username,
        "password": PORTAL_PATIENT.password,
        "action": "approve",
    }
    query = redirect_query(interactive.http.post("/oauth2/default/provider/login", data=login))
    body = exchange(interactive, client, query["code"], verifier).json()
    assert body["patient"] == PORTAL_PATIENT.own_patient


def test_deny_redirects_access_denied(interactive: Env) -> None:
    params, request_id, _ = _login_form(interactive, "openid patient/Patient.rs")
    response = interactive.http.post(
        "/oauth2/default/provider/login", data={"request_id": request_id, "action": "deny"}
    )
    query = redirect_query(response)
    assert query["error"] == "access_denied"
    assert query["state"] == params["state"]
