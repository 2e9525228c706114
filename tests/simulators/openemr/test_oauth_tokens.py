"""verify(), introspection, userinfo and the password grant."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from test_oauth_harness import (
    CLINICIAN,
    PORTAL_PATIENT,
    Env,
    exchange,
    get_code,
    register,
    register_confidential,
    serve_oauth,
)

TOKEN = "/oauth2/default/token"
SCOPE = "openid fhirUser offline_access api:oemr user/patient.write user/Patient.read"


@pytest.fixture
def env() -> Iterator[Env]:
    with serve_oauth(auto_approve=True) as env:
        yield env


def _tokens(env: Env, client: dict[str, Any], scope: str = SCOPE) -> dict[str, Any]:
    code, verifier = get_code(env, client, scope)
    body: dict[str, Any] = exchange(env, client, code, verifier).json()
    return body


def _password(env: Env, client: dict[str, Any], **form: str) -> Any:
    data = {"grant_type": "password", "scope": SCOPE, "user_role": "users"}
    data |= {"username": CLINICIAN.username, "password": CLINICIAN.password} | form
    return env.http.post(TOKEN, data=data, auth=(client["client_id"], client["client_secret"]))


def test_verify_refuses_expired_tampered_and_foreign_tokens(env: Env) -> None:
    client = register_confidential(env, SCOPE)
    token = _tokens(env, client)["access_token"]
    assert env.oauth.verify(token) is not None

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scopes"].append("system/Patient.read")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert env.oauth.verify(f"{header}.{forged}.{signature}") is None

    stranger = RSAKey.generate_key(2048)
    own_header = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    resigned = jwt.encode(own_header, claims, stranger)
    assert env.oauth.verify(resigned) is None
    assert env.oauth.verify("not-a-jwt") is None

    env.clock.advance(3601)
    assert env.oauth.verify(token) is None


def test_revoked_token_no_longer_verifies(env: Env) -> None:
    client = register_confidential(env, SCOPE)
    token = _tokens(env, client)["access_token"]
    assert env.oauth.revoke(token) is True
    assert env.oauth.verify(token) is None
    assert env.oauth.revoke(token) is False


def test_introspection_answers_only_the_owning_client(env: Env) -> None:
    client = register_confidential(env, SCOPE)
    other = register_confidential(env, SCOPE)
    tokens = _tokens(env, client)
    auth = (client["client_id"], client["client_secret"])
    active = env.http.post(
        "/oauth2/default/introspect", data={"token": tokens["access_token"]}, auth=auth
    )
    assert active.status_code == 200
    body = active.json()
    assert body["active"] is True
    assert body["client_id"] == client["client_id"]
    assert body["sub"] == CLINICIAN.uuid
    assert set(body["scope"].split()) == set(SCOPE.split())
    assert isinstance(body["exp"], int)

    refresh = env.http.post(
        "/oauth2/default/introspect",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=auth,
    ).json()
    assert refresh["active"] is True
    assert refresh["token_type"] == "refresh_token"

    foreign = env.http.post(
        "/oauth2/default/introspect",
        data={"token": tokens["access_token"]},
        auth=(other["client_id"], other["client_secret"]),
    )
    assert foreign.json() == {"active": False}
    junk = env.http.post("/oauth2/default/introspect", data={"token": "junk"}, auth=auth)
    assert junk.json() == {"active": False}
    unauthenticated = env.http.post(
        "/oauth2/default/introspect", data={"token": tokens["access_token"]}
    )
    assert unauthenticated.json()["error"] == "invalid_client"

    env.clock.advance(3601)
    expired = env.http.post(
        "/oauth2/default/introspect", data={"token": tokens["access_token"]}, auth=auth
    )
    assert expired.json() == {"active": False}


def test_public_client_introspects_with_its_client_id(env: Env) -> None:
    client = register(env, scope="openid launch/patient patient/Patient.rs")
    tokens = _tokens(env, client, "openid launch/patient patient/Patient.rs")
    body = env.http.post(
        "/oauth2/default/introspect",
        data={"token": tokens["access_token"], "client_id": client["client_id"]},
    ).json()
    assert body["active"] is True
    assert body["patient"] == tokens["patient"]


def test_userinfo(env: Env) -> None:
    client = register_confidential(env, SCOPE)
    token = _tokens(env, client)["access_token"]
    info = env.http.get("/oauth2/default/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert info.json() == {"sub": CLINICIAN.uuid, "fhirUser": CLINICIAN.fhir_user}
    assert env.http.get("/oauth2/default/userinfo").status_code == 401


def test_password_grant_for_users(env: Env) -> None:
    client = register_confidential(env, SCOPE)
    response = _password(env, client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"access_token", "refresh_token", "id_token"} <= set(body)
    grant = env.oauth.verify(body["access_token"])
    assert grant is not None
    assert grant.user == CLINICIAN.fhir_user
    assert "user/patient.write" in grant.scopes


@pytest.mark.parametrize(
    "change",
    [
        {"password": "wrong"},
        {"user_role": "patient"},
        {"username": "nobody"},
    ],
)
def test_password_grant_refuses_bad_credentials(env: Env, change: dict[str, str]) -> None:
    client = register_confidential(env, SCOPE)
    response = _password(env, client, **change)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_password_grant_for_patients_needs_their_email(env: Env) -> None:
    client = register(env, scope="openid api:port patient/Patient.rs")
    form = {
        "grant_type": "password",
        "client_id": client["client_id"],
        "scope": "openid patient/Patient.rs",
        "user_role": "patient",
        "username": PORTAL_PATIENT.username,
        "password": PORTAL_PATIENT.password,
    }
    assert env.http.post(TOKEN, data=form).json()["error"] == "invalid_grant"
    response = env.http.post(TOKEN, data=form | {"email": "jdoe@example.org"})
    assert response.status_code == 200, response.text
    grant = env.oauth.verify(response.json()["access_token"])
    assert grant is not None
    assert grant.patient == PORTAL_PATIENT.own_patient


def test_password_grant_can_be_switched_off() -> None:
    with serve_oauth(password_grant=False) as env:
        client = register_confidential(env, SCOPE)
        response = _password(env, client)
        assert response.json()["error"] == "unsupported_grant_type"
        config = env.http.get("/oauth2/default/.well-known/openid-configuration").json()
        assert "password" not in config["grant_types_supported"]
