"""Dynamic client registration follows OpenEMR's rules and answer shape (source-systems §1.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_oauth_harness import REDIRECT, Env, serve_oauth

from adapters.openemr.auth import make_rsa_jwk
from simulators.openemr.oauth import OAuthServer, RegistrationError
from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"
REGISTRATION = "/oauth2/default/registration"


@pytest.fixture
def env() -> Iterator[Env]:
    with serve_oauth() as env:
        yield env


def _post(env: Env, body: dict[str, Any]) -> Any:
    return env.http.post(REGISTRATION, json=body)


def test_private_client_matches_the_recorded_response_key_for_key(env: Env) -> None:
    recorded = json.loads((FIXTURES / "registration-response.json").read_text())
    request = {k: recorded[k] for k in ("application_type", "client_name", "contacts")}
    request |= {
        "redirect_uris": recorded["redirect_uris"],
        "token_endpoint_auth_method": recorded["token_endpoint_auth_method"],
        "scope": recorded["scope"],
    }
    response = _post(env, request)
    assert response.status_code == 200  # not RFC 7591's 201
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(recorded) <= set(body)
    assert set(body) - set(recorded) == {"client_role", "dsi_type"}  # newer OpenEMR adds them
    for key in ("contacts", "redirect_uris", "scope", "application_type", "client_name"):
        assert body[key] == recorded[key]
    assert body["client_role"] == "user"
    assert body["dsi_type"] == "none"
    assert body["client_secret_expires_at"] == 0
    assert len(body["client_id"]) == len(recorded["client_id"])
    assert len(body["client_secret"]) == len(recorded["client_secret"])
    assert body["registration_client_uri"].startswith(f"{env.oauth.oauth_base}/client/")
    assert isinstance(body["client_id_issued_at"], int)


def test_public_client_gets_no_secret_and_patient_role(env: Env) -> None:
    body = _post(
        env, {"client_name": "p", "redirect_uris": [REDIRECT], "scope": "openid patient/Patient.rs"}
    ).json()
    assert body["client_secret"] == ""
    assert body["client_role"] == "patient"


@pytest.mark.parametrize("scope", ["openid user/Patient.read", "system/Patient.read"])
def test_public_client_may_not_ask_for_user_or_system_scopes(env: Env, scope: str) -> None:
    response = _post(env, {"redirect_uris": [REDIRECT], "scope": scope})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_system_scopes_need_keys(env: Env) -> None:
    base = {
        "application_type": "private",
        "redirect_uris": [REDIRECT],
        "scope": "system/Patient.rs",
    }
    refused = _post(env, base)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_client_metadata",
        "error_description": "jwks is invalid",
    }
    assert _post(env, base | {"jwks": make_rsa_jwk().jwks}).status_code == 200
    assert _post(env, base | {"jwks_uri": "https://keys.example/jwks"}).status_code == 200


def test_unknown_scope_is_invalid_scope(env: Env) -> None:
    body = {"redirect_uris": [REDIRECT], "scope": "openid patient/Imaginary.read"}
    response = _post(env, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "patient/Imaginary.read" in response.json()["hint"]


def test_observation_write_is_not_a_scope(env: Env) -> None:
    body = {"application_type": "private", "redirect_uris": [REDIRECT]}
    assert _post(env, body | {"scope": "user/Observation.write"}).json()["error"] == "invalid_scope"
    assert _post(env, body | {"scope": "user/Patient.write"}).status_code == 200


def test_redirect_uris_are_required(env: Env) -> None:
    response = _post(env, {"application_type": "private", "scope": "openid"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    ("key", "value"),
    [("token_endpoint_auth_method", "tls_client_auth"), ("subject_type", "secret")],
)
def test_enumerated_values_are_checked(env: Env, key: str, value: str) -> None:
    body = {"redirect_uris": [REDIRECT], "scope": "openid", key: value}
    response = _post(env, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_json_content_type_is_required(env: Env) -> None:
    response = env.http.post(REGISTRATION, data={"scope": "openid"})
    assert response.status_code == 400
    assert response.json()["error_description"] == "Unexpected content type"


def test_unknown_keys_are_dropped_and_jwks_echoed_as_object(env: Env) -> None:
    jwks = make_rsa_jwk().jwks
    body = _post(
        env,
        {
            "application_type": "private",
            "redirect_uris": [REDIRECT],
            "scope": "system/Patient.rs",
            "jwks": jwks,
            "favourite_colour": "teal",
        },
    ).json()
    assert "favourite_colour" not in body
    assert body["jwks"] == jwks


def test_registration_client_uri_reads_back_with_the_access_token(env: Env) -> None:
    body = _post(
        env, {"application_type": "private", "redirect_uris": [REDIRECT], "scope": "openid"}
    ).json()
    uri = body["registration_client_uri"]
    assert env.http.get(uri).status_code == 403
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    details = env.http.get(uri, headers=auth).json()
    assert details["client_id"] == body["client_id"]
    assert details["application_type"] == "user"  # OpenEMR answers the role here


def test_register_client_in_code_uses_the_same_rules() -> None:
    oauth = OAuthServer("http://127.0.0.1:1")
    ok = oauth.register_client({"redirect_uris": [REDIRECT], "scope": "openid launch/patient"})
    assert ok["client_secret"] == ""
    with pytest.raises(RegistrationError) as refused:
        oauth.register_client({"redirect_uris": [REDIRECT], "scope": "user/Patient.read"})
    assert refused.value.error == "invalid_client_metadata"
