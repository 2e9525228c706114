"""CDS client authentication by JWT (#trusting-cds-clients): what passes and what gets a bare 401.

Keys: the spec's example key pair and token (fixtures/spec-examples/cds-hooks) and keys generated
per session (conftest). Discovery is the endpoint under test unless a case is about `aud`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_hooks.auth import Authenticator, AuthFailed
from cds_hooks.client import sign_client_jwt
from cds_hooks.config import AuthConfig, TrustedClient
from tests.cds_hooks.conftest import ISS, Harness, Keys, client_config, spec_json
from tests.support.server import serve

DISCOVERY = "/cds-services"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(aud: str, **extra: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": ISS,
        "aud": aud,
        "exp": now + 300,
        "iat": now,
        "jti": str(time.time_ns()),
        **extra,
    }


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    ("kid", "alg", "which"),
    [("ec-1", "ES384", "ec"), ("rsa-1", "RS384", "rsa"), ("example-kid", "ES384", "spec")],
)
def test_es384_and_rs384_tokens_from_trusted_keys_pass(
    cds: Harness, keys: Keys, kid: str, alg: str, which: str
) -> None:
    cds.key = getattr(keys, which)
    resp = cds.get(DISCOVERY, kid=kid, alg=alg)
    assert resp.status_code == 200, resp.text
    assert resp.json()["services"]


def test_the_spec_example_token_verifies_but_is_rejected_as_expired(keys: Keys) -> None:
    token = (spec_json.__globals__["SPEC"] / "jwt-compact.cds-hooks-2.0.1.txt").read_text().strip()
    payload = spec_json("jwt-payload.cds-hooks-2.0.1.json")
    jku = spec_json("jwt-header.cds-hooks-2.0.1.json")["jku"]
    jwks = spec_json("jwks-public.cds-hooks-2.0.1.json")

    def transport(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == jku  # only the allow-listed jku is ever fetched
        return httpx.Response(200, json=jwks)

    client = TrustedClient(iss=payload["iss"], jku=(jku,), tenant=payload["tenant"])

    def auth(now: float) -> Authenticator:
        config = AuthConfig(clients=(client,), max_lifetime_s=10**9)
        http = httpx.AsyncClient(transport=httpx.MockTransport(transport))
        return Authenticator(config, http, clock=lambda: now)

    import asyncio

    identity = asyncio.run(
        auth(payload["iat"] + 60).authenticate(f"Bearer {token}", payload["aud"])
    )
    assert identity.iss == payload["iss"] and identity.tenant == payload["tenant"]
    with pytest.raises(AuthFailed, match="expired"):
        asyncio.run(auth(time.time()).authenticate(f"Bearer {token}", payload["aud"]))


def _bad_tokens(cds: Harness, keys: Keys) -> dict[str, str]:
    aud = cds.base + DISCOVERY
    hs = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "ec-1"}).encode())
    hs_body = f"{hs}.{_b64(json.dumps(_claims(aud)).encode())}"
    # HS256 keyed with the public JWK: the classic algorithm-confusion attack
    secret = json.dumps(keys.public_jwks()["keys"][0]).encode()
    hs_sig = _b64(hmac.new(secret, hs_body.encode(), hashlib.sha256).digest())
    good = cds.token(DISCOVERY)
    head, body, sig = good.split(".")
    tampered_claims = {
        **json.loads(base64.urlsafe_b64decode(body + "==")),
        "iss": ISS,
        "exp": int(time.time()) + 200,
    }
    return {
        "expired": cds.token(DISCOVERY, now=time.time() - 3600),
        "wrong aud": cds.token("/cds-services/imaging-order-safety"),
        "unknown kid": cds.token(DISCOVERY, kid="nope"),
        "untrusted iss": cds.token(DISCOVERY, iss="https://evil.example/"),
        "jku not allow-listed": cds.token(DISCOVERY, jku="https://evil.example/jwks.json"),
        "alg none": _unsigned({"alg": "none", "typ": "JWT", "kid": "ec-1"}, _claims(aud)),
        "alg HS256": f"{hs_body}.{hs_sig}",
        "tampered signature": f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}",
        "tampered payload": f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{sig}",
        "signed by an untrusted key": sign_client_jwt(keys.other, iss=ISS, aud=aud, kid="ec-1"),
        "RSA key named for ES384": cds.token(DISCOVERY, kid="rsa-1", alg="ES384"),
        "iat in the future": cds.token(DISCOVERY, now=time.time() + 3600),
        "nbf in the future": cds.token(DISCOVERY, claims={"nbf": int(time.time()) + 3600}),
        "no jti": cds.token(DISCOVERY, claims={"jti": ""}),
        "lives too long": cds.token(DISCOVERY, lifetime_s=10 * 3600),
        "typ not JWT": _unsigned({"alg": "ES384", "typ": "at+jwt", "kid": "ec-1"}, _claims(aud)),
        "not a JWT": "abc.def",
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrong aud",
        "unknown kid",
        "untrusted iss",
        "jku not allow-listed",
        "alg none",
        "alg HS256",
        "tampered signature",
        "tampered payload",
        "signed by an untrusted key",
        "RSA key named for ES384",
        "iat in the future",
        "nbf in the future",
        "no jti",
        "lives too long",
        "typ not JWT",
        "not a JWT",
    ],
)
def test_bad_tokens_get_a_bare_401_and_are_never_logged(
    cds: Harness, keys: Keys, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = _bad_tokens(cds, keys)[case]
    with caplog.at_level(logging.DEBUG):
        resp = cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.content == b"" and resp.headers["www-authenticate"] == "Bearer"
    assert token not in caplog.text
    signature = token.split(".")[-1]
    assert not signature or signature not in caplog.text


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer "])
def test_missing_or_non_bearer_authorization_is_401(cds: Harness, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    assert cds.http.get(DISCOVERY, headers=headers).status_code == 401


def test_a_replayed_jti_is_refused_until_the_token_expires(cds: Harness) -> None:
    token = cds.token(DISCOVERY)
    headers = {"Authorization": f"Bearer {token}"}
    assert cds.http.get(DISCOVERY, headers=headers).status_code == 200
    assert cds.http.get(DISCOVERY, headers=headers).status_code == 401


def test_aud_must_be_the_exact_url_of_each_endpoint(cds: Harness) -> None:
    body = {
        "feedback": [
            {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2021-12-11T10:05:31Z"}
        ]
    }
    path = "/cds-services/imaging-order-safety/feedback"
    service_aud = cds.token("/cds-services/imaging-order-safety")
    resp = cds.http.post(path, json=body, headers={"Authorization": f"Bearer {service_aud}"})
    assert resp.status_code == 401  # a service token is not a feedback token
    assert cds.post(path, body).status_code == 200
    token = sign_client_jwt(
        cds.key, iss=ISS, aud=["https://other.example", cds.base + DISCOVERY], kid="ec-1"
    )
    assert cds.http.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_tenant_is_enforced_when_the_client_is_configured_with_one(make_app, keys: Keys) -> None:
    app = make_app(clients=[client_config(keys, tenant="t-1")])
    with TestClient(app) as http:
        harness = Harness(http, keys.ec)
        assert harness.get(DISCOVERY).status_code == 401
        assert harness.get(DISCOVERY, tenant="t-2").status_code == 401
        assert harness.get(DISCOVERY, tenant="t-1").status_code == 200


def test_jku_keys_are_fetched_only_from_the_allow_list_and_refreshed_rate_limited(
    make_app, keys: Keys
) -> None:
    fetches: list[str] = []
    served = {"keys": [{**keys.ec.as_dict(private=False), "kid": "jku-1", "alg": "ES384"}]}
    jwks_app = FastAPI()

    @jwks_app.get("/jwks.json")
    def jwks() -> dict[str, object]:
        fetches.append("x")
        return served

    with serve(jwks_app, ready_path="/jwks.json") as jwks_base:
        fetches.clear()
        jku = f"{jwks_base}/jwks.json"
        app = make_app(clients=[{"iss": ISS, "jku": [jku]}], cds_jwks_min_refresh_s=3600)
        with TestClient(app) as http:
            harness = Harness(http, keys.ec, kid="jku-1")
            assert harness.get(DISCOVERY, jku=jku).status_code == 200
            assert harness.get(DISCOVERY, jku=jku).status_code == 200
            assert len(fetches) == 1  # cached
            assert harness.get(DISCOVERY, jku=jku, kid="unknown-1").status_code == 401
            assert harness.get(DISCOVERY, jku=jku, kid="unknown-2").status_code == 401
            assert len(fetches) == 1  # an unknown kid may not trigger a refetch storm
            # a token without jku has no keys: this client's JWKS is only reachable through jku
            assert harness.get(DISCOVERY).status_code == 401


def test_disabled_authentication_warns_on_every_call(
    make_app, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(cds_auth="disabled")
    with TestClient(app) as http, caplog.at_level(logging.WARNING):
        assert http.get(DISCOVERY).status_code == 200
        assert http.get(DISCOVERY).status_code == 200
    warnings = [r for r in caplog.records if "authentication is DISABLED" in r.getMessage()]
    assert len(warnings) == 2


def test_symmetric_and_none_algorithms_cannot_be_configured(tmp_path) -> None:
    from cdss.settings import SettingsError, load_settings

    for alg in ("HS256", "none"):
        with pytest.raises(SettingsError, match="CDSS_CDS_ALGORITHMS"):
            load_settings(data_dir=tmp_path, cds_algorithms=[alg])


def test_a_private_key_in_the_client_configuration_is_refused(tmp_path) -> None:
    from cdss.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="private"):
        load_settings(
            data_dir=tmp_path,
            cds_clients=[
                {"iss": ISS, "jwks": {"keys": [spec_json("jwk-private.cds-hooks-2.0.1.json")]}}
            ],
        )
