"""Bearer tokens: what is accepted and every way one is refused (401 + WWW-Authenticate)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey, OctKey, RSAKey

from tests.fhir_facade.security.conftest import AUD, ISS, Issuer


def _refused(client: TestClient, token: str | None, why: str, *, scheme: str = "Bearer") -> None:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    resp = client.get("/fhir/Patient", headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith('Bearer realm="cdss-fhir"')
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert why in outcome["issue"][0]["diagnostics"]
    if token:
        assert token not in resp.text  # the answer never echoes the token


def _accepted(client: TestClient, token: str) -> bool:
    resp = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    status: int = resp.status_code
    return status == 200


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_valid_token_is_accepted(secure_client: TestClient, issuer: Issuer) -> None:
    resp = secure_client.get("/fhir/Patient", headers=issuer.headers("user/Patient.read"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["resourceType"] == "Bundle"


def test_no_token_or_wrong_scheme(secure_client: TestClient) -> None:
    _refused(secure_client, None, "a bearer token is required")
    _refused(secure_client, "abc", "Bearer", scheme="Basic")
    resp = secure_client.get("/fhir/Patient")
    assert resp.headers["www-authenticate"] == 'Bearer realm="cdss-fhir"'


def test_public_documents_need_no_token(secure_client: TestClient) -> None:
    meta = secure_client.get("/fhir/metadata")
    assert meta.status_code == 200
    security = meta.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {"authorize": f"{ISS}/authorize", "token": f"{ISS}/token"}
    assert int(meta.headers["content-length"]) == len(meta.content)
    smart = secure_client.get("/fhir/.well-known/smart-configuration")
    assert smart.status_code == 200
    doc = smart.json()
    assert doc["issuer"] == ISS
    assert doc["authorization_endpoint"] == f"{ISS}/authorize"
    assert doc["token_endpoint"] == f"{ISS}/token"
    assert "S256" in doc["code_challenge_methods_supported"]
    assert {"permission-v1", "permission-v2", "permission-patient"} <= set(doc["capabilities"])


def test_expired_and_not_yet_valid(secure_client: TestClient, issuer: Issuer) -> None:
    now = int(time.time())
    _refused(secure_client, issuer.mint(exp=now - 120), "expired")
    _refused(secure_client, issuer.mint(nbf=now + 600), "not valid yet")
    _refused(secure_client, issuer.mint(iat=now + 600), "future")
    # within the 60 s leeway: still fine
    ok = secure_client.get(
        "/fhir/Patient", headers={"Authorization": f"Bearer {issuer.mint(exp=now - 10)}"}
    )
    assert ok.status_code == 200


def test_missing_exp_wrong_audience_and_issuer(secure_client: TestClient, issuer: Issuer) -> None:
    _refused(secure_client, issuer.mint(exp=None), "no exp")
    _refused(secure_client, issuer.mint(aud="https://other.example/fhir"), "audience")
    _refused(secure_client, issuer.mint(aud=["x", AUD + "/"]), "audience")
    _refused(secure_client, issuer.mint(iss="https://evil.example"), "issuer is not trusted")
    _refused(secure_client, issuer.mint(iss=None), "issuer is not trusted")  # iss required
    assert _accepted(secure_client, issuer.mint())  # the same issuer's well-formed token passes


def test_bad_signature_unknown_kid_and_algorithms(
    secure_client: TestClient, issuer: Issuer
) -> None:
    stranger = RSAKey.generate_key(2048)
    _refused(secure_client, issuer.mint(key=stranger), "signature")
    _refused(secure_client, issuer.mint(kid="nope"), "kid")
    token = issuer.mint()
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "system/*.cruds"
    _refused(secure_client, f"{header}.{_b64(claims)}.{signature}", "signature")
    # alg none, and HS256 keyed with the public key (algorithm confusion)
    _refused(secure_client, f"{_b64({'alg': 'none', 'kid': 'k1'})}.{payload}.", "alg 'none'")
    hs = issuer.mint(alg="HS256", key=OctKey.import_key(b"x" * 32))  # type: ignore[arg-type]
    _refused(secure_client, hs, "alg 'HS256'")
    es = issuer.mint(alg="ES256", key=ECKey.generate_key("P-256"))  # type: ignore[arg-type]
    _refused(secure_client, es, "signature")
    _refused(secure_client, "not.a.jwt", "well-formed")
    assert _accepted(secure_client, issuer.mint())  # while its own RS256 tokens pass
    _refused(secure_client, "opaque-token", "no issuer introspects")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "cdss.example.org"])
def test_disabled_auth_is_refused_off_loopback(tmp_path, host: str) -> None:  # type: ignore[no-untyped-def]
    from cdss.app import create_app
    from cdss.settings import SettingsError, load_settings
    from fhir_facade.security.settings import SecuritySettings

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}", data_dir=tmp_path, host=host
    )
    with pytest.raises(SettingsError, match="CDSS_FHIR_AUTH=disabled"):
        create_app(settings, security=SecuritySettings(_env_file=None, auth="disabled"))  # type: ignore[call-arg]


def test_settings_refuse_none_and_symmetric_algorithms() -> None:
    from fhir_facade.security.settings import SecuritySettingsError, load_security_settings

    with pytest.raises(SecuritySettingsError, match="ALGORITHMS"):
        load_security_settings(_env_file=None, algorithms=["none"])
    with pytest.raises(SecuritySettingsError, match="ALGORITHMS"):
        load_security_settings(_env_file=None, algorithms=["HS256"])
    with pytest.raises(SecuritySettingsError, match="audience"):
        load_security_settings(_env_file=None, issuers=[{"issuer": "x", "jwks": {"keys": []}}])
