"""client_credentials with private_key_jwt (SMART Backend Services) as OpenEMR checks it."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from test_oauth_harness import Env, register, serve_oauth

from adapters.openemr.auth import KeyPair, make_rsa_jwk
from simulators.openemr.oauth import OAuthServer
from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPES = "system/Patient.read system/Observation.rs system/Patient.$export"
KEYS = make_rsa_jwk()
SERVED_KEYS = make_rsa_jwk()


def _serve_keys(app: FastAPI, _: OAuthServer) -> None:
    @app.get("/client-keys.json")
    def keys() -> dict[str, Any]:
        return SERVED_KEYS.jwks


@pytest.fixture
def env() -> Iterator[Env]:
    with serve_oauth(extra=_serve_keys) as env:
        yield env


def _backend_client(env: Env, keys: KeyPair = KEYS, **metadata: Any) -> str:
    metadata.setdefault("jwks", keys.jwks)
    body = register(
        env,
        application_type="private",
        token_endpoint_auth_method="private_key_jwt",
        scope=SCOPES,
        **{k: v for k, v in metadata.items() if v is not None},
    )
    client_id: str = body["client_id"]
    return client_id


def _assertion(env: Env, client_id: str, *, keys: KeyPair = KEYS, **changes: Any) -> str:
    now = int(env.clock())
    header = {"alg": "RS384", "kid": keys.kid, "typ": "JWT"} | changes.pop("header", {})
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": env.token_url,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    } | changes
    key = RSAKey.import_key(keys.private_jwk)
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def _token(env: Env, assertion: str, scope: str = SCOPES) -> Any:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return env.http.post("/oauth2/default/token", data=form)


def test_good_assertion_gets_a_five_minute_system_token(env: Env) -> None:
    client_id = _backend_client(env)
    response = _token(env, _assertion(env, client_id))
    assert response.status_code == 200, response.text
    body = response.json()
    recorded = json.loads((FIXTURES / "token-response.client-credentials.doc.json").read_text())
    assert set(body) == set(recorded)
    assert body["expires_in"] == 300  # the code's PT300S, not the docs' 60
    assert body["scope"] == SCOPES
    grant = env.oauth.verify(body["access_token"])
    assert grant is not None
    assert grant.client_id == client_id
    assert grant.patient is None and grant.user is None
    env.clock.advance(301)
    assert env.oauth.verify(body["access_token"]) is None


def test_keys_can_come_from_a_jwks_uri(env: Env) -> None:
    client_id = _backend_client(env, jwks_uri=f"{env.base}/client-keys.json", jwks=None)
    response = _token(env, _assertion(env, client_id, keys=SERVED_KEYS))
    assert response.status_code == 200, response.text


def _hs256(env: Env, client_id: str) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": env.token_url,
        "exp": int(env.clock()) + 60,
    }
    header = {"alg": "HS256", "kid": KEYS.kid}
    return jwt.encode(header, claims | {"jti": "x"}, OctKey.generate_key(256))


def _none_alg(env: Env, client_id: str) -> str:
    signed = _assertion(env, client_id)
    head = base64.urlsafe_b64encode(b'{"alg":"none","kid":"' + KEYS.kid.encode() + b'"}')
    return head.rstrip(b"=").decode() + "." + signed.split(".")[1] + "."


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(_hs256, "alg must be RS384", id="hs256"),
        pytest.param(_none_alg, "alg must be RS384", id="alg-none"),
        pytest.param(
            lambda e, c: _assertion(e, c, aud=f"{e.base}/other"), "aud must be", id="wrong-aud"
        ),
        pytest.param(
            lambda e, c: _assertion(e, c, exp=int(e.clock()) - 120), "expired", id="expired"
        ),
        pytest.param(
            lambda e, c: _assertion(e, c, exp=int(e.clock()) + 3600),
            "5 minutes",
            id="exp-beyond-5-min",
        ),
        pytest.param(
            lambda e, c: _assertion(e, c, header={"kid": "unknown"}),
            "key rejected",
            id="unknown-kid",
        ),
        pytest.param(
            lambda e, c: _assertion(e, c, iss="someone-else"), "iss and sub", id="iss-not-client"
        ),
        pytest.param(
            lambda e, c: _assertion(e, c, keys=SERVED_KEYS), "key rejected", id="other-key"
        ),
        pytest.param(lambda e, c: _assertion(e, c, jti=None), "jti", id="no-jti"),
    ],
)
def test_bad_assertions_are_invalid_client(env: Env, make: Any, reason: str) -> None:
    client_id = _backend_client(env)
    response = _token(env, make(env, client_id))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_client"
    assert reason in body["error_description"]
    assert "access_token" not in body


def test_replayed_jti_is_invalid_client(env: Env) -> None:
    client_id = _backend_client(env)
    assertion = _assertion(env, client_id)
    assert _token(env, assertion).status_code == 200
    replay = _token(env, assertion)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_client"


def test_unknown_client_is_invalid_client(env: Env) -> None:
    response = _token(env, _assertion(env, "no-such-client"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_only_system_scopes(env: Env) -> None:
    client_id = _backend_client(env)
    response = _token(env, _assertion(env, client_id), scope="system/Patient.read openid")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_client_secret_cannot_get_client_credentials(env: Env) -> None:
    body = register(env, application_type="private", scope="openid user/Patient.read")
    form = {"grant_type": "client_credentials", "scope": "system/Patient.read"}
    response = env.http.post(
        "/oauth2/default/token", data=form, auth=(body["client_id"], body["client_secret"])
    )
    assert response.json()["error"] == "invalid_client"


def test_disabled_client_cannot_authenticate(env: Env) -> None:
    client_id = _backend_client(env)
    env.oauth.set_client_enabled(client_id, False)
    assert _token(env, _assertion(env, client_id)).json()["error"] == "invalid_client"


def test_backend_client_also_needs_its_redirect_uri(env: Env) -> None:
    response = env.http.post(
        "/oauth2/default/registration",
        json={"application_type": "private", "scope": SCOPES, "jwks": KEYS.jwks},
    )
    assert response.json()["error"] == "invalid_redirect_uri"
