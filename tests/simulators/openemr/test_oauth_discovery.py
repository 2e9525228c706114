"""Discovery documents and JWKS, key for key against source-systems §1.5 and the fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from test_oauth_harness import Env, serve_oauth

from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with serve_oauth() as env:
        yield env


def test_smart_configuration_is_the_8_2_0_dev_document(env: Env) -> None:
    response = env.http.get("/apis/default/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    assert list(config) == [
        "issuer",
        "jwks_uri",
        "authorization_endpoint",
        "grant_types_supported",
        "token_endpoint",
        "capabilities",
        "code_challenge_methods_supported",
        "scopes_supported",
        "introspection_endpoint",
        "token_endpoint_auth_methods_supported",
        "response_types_supported",
    ]
    oauth = env.oauth.oauth_base
    assert config["issuer"] == env.oauth.fhir_base
    assert config["jwks_uri"] == f"{oauth}/jwk"
    assert config["authorization_endpoint"] == f"{oauth}/authorize"
    assert config["token_endpoint"] == f"{oauth}/token"
    assert config["introspection_endpoint"] == f"{oauth}/introspect"
    assert config["grant_types_supported"] == ["client_credentials", "authorization_code"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "private_key_jwt",
    ]
    assert "code" in config["response_types_supported"]
    assert not {"registration_endpoint", "revocation_endpoint", "management_endpoint"} & set(config)


def test_smart_scopes_supported_is_a_nested_array(env: Env) -> None:
    config = env.http.get("/apis/default/fhir/.well-known/smart-configuration").json()
    scopes = config["scopes_supported"]
    assert len(scopes) == 1
    assert isinstance(scopes[0], list)
    assert {"openid", "fhirUser", "launch", "launch/patient", "patient/Observation.rs"} <= set(
        scopes[0]
    )


def test_smart_capabilities(env: Env) -> None:
    config = env.http.get("/apis/default/fhir/.well-known/smart-configuration").json()
    assert set(config["capabilities"]) == {
        "launch-ehr",
        "launch-standalone",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "client-public",
        "context-banner",
        "context-ehr-patient",
        "context-style",
        "context-standalone-patient",
        "sso-openid-connect",
        "permission-user",
        "permission-patient",
        "permission-offline",
        "permission-v1",
        "permission-v2",
        "authorize-post",
        "context-ehr-encounter",
    }


def test_openid_configuration_keys(env: Env) -> None:
    config = env.http.get("/oauth2/default/.well-known/openid-configuration").json()
    recorded = json.loads((FIXTURES / "openid-configuration.json").read_text())
    assert set(recorded) <= set(config)
    base = env.oauth.oauth_base
    for key, value in recorded.items():
        if key == "scopes_supported":
            assert set(value) <= set(config[key])
        else:
            assert config[key] == value.replace("https://localhost:9300/oauth2/default", base)
    assert config["code_challenge_methods_supported"] == ["S256", "plain"]
    assert config["grant_types_supported"] == ["authorization_code", "password", "refresh_token"]
    assert config["response_modes_supported"] == ["query", "fragment", "form_post"]
    assert config["subject_types_supported"] == ["public"]
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "RS384"]
    assert config["require_request_uri_registration"] == ["false"]
    assert "fhirUser" in config["claims_supported"]
    assert config["ui_locales_supported"] == ["en-US"]


def test_jwks_publishes_the_signing_key(env: Env) -> None:
    keys = env.http.get("/oauth2/default/jwk").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert keys[0]["alg"] == "RS256"
    assert keys[0]["kid"]
    assert "d" not in keys[0]
