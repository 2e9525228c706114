"""The OpenEMR simulator as the facade's authorization server, over real HTTP on loopback: its
RS256 access tokens (no `iss`, `aud` = the client id, no `patient`) verified against its JWKS,
and the patient context taken from its RFC 7662 introspection endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cdss.app import create_app
from cdss.settings import load_settings
from fhir_facade.security.settings import SecuritySettings
from simulators.openemr.app import create_openemr_app
from simulators.openemr.oauth import UserAccount
from simulators.openemr.oauth.context import DEFAULT_ADMIN
from tests.fhir_facade.security.conftest import ids, observation
from tests.support.postgres import free_port
from tests.support.server import serve

ME = "9f1b1c2e-0000-4000-8000-0000000000aa"
OTHER = "9f1b1c2e-0000-4000-8000-0000000000bb"
PORTAL = UserAccount("jdoe", "p4ss", f"Patient/{ME}", role="patient", email="jdoe@example.org")
SCOPES = "openid api:fhir patient/Observation.read patient/Patient.read user/Observation.read"


@dataclass
class Emr:
    base: str
    oauth: Any
    client_id: str
    client_secret: str

    def token(self, scope: str, **login: str) -> str:
        form = {"grant_type": "password", "scope": scope, **login}
        resp = httpx.post(
            f"{self.base}/oauth2/default/token",
            data=form,
            auth=(self.client_id, self.client_secret),
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])


@pytest.fixture(scope="module")
def emr() -> Iterator[Emr]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_openemr_app(public_base=base, users={"admin": DEFAULT_ADMIN, "jdoe": PORTAL})
    with serve(app, ready_path="/apis/default/fhir/metadata", port=port):
        reg = app.state.oauth.register_client(
            {"application_type": "private", "client_name": "cdss facade"}
            | {"redirect_uris": ["http://127.0.0.1/cb"], "scope": SCOPES}
        )
        yield Emr(base, app.state.oauth, reg["client_id"], reg["client_secret"])


def _security(emr: Emr, **issuer: Any) -> SecuritySettings:
    oauth = f"{emr.base}/oauth2/default"
    config = {
        "issuer": oauth,
        "require_iss": False,
        "audiences": [emr.client_id],
        "jwks_uri": f"{oauth}/jwk",
        "introspection_endpoint": f"{oauth}/introspect",
        "client_id": emr.client_id,
        "client_secret": emr.client_secret,
        "authorization_endpoint": f"{oauth}/authorize",
        "token_endpoint": f"{oauth}/token",
    } | issuer
    return SecuritySettings(  # type: ignore[call-arg]
        _env_file=None, auth="required", audit=False, issuers=[config], introspection_cache_s=0
    )


@pytest.fixture
def facade(tmp_path: Path, emr: Emr) -> Iterator[TestClient]:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", data_dir=tmp_path)
    with TestClient(create_app(settings, security=_security(emr))) as client:
        admin = {"Authorization": f"Bearer {emr.token('user/Observation.read', **_admin())}"}
        assert client.get("/fhir/Observation", headers=admin).status_code == 200
        yield client


def _admin() -> dict[str, str]:
    return {"username": "admin", "password": "pass", "user_role": "users"}


def _seed(tmp_path: Path) -> None:
    """Data for both patients, written straight into the store the facade reads."""
    from fhir_facade.store.sql_store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        with store.unit() as unit:
            for pid in (ME, OTHER):
                unit.update({"resourceType": "Patient", "id": pid})
                unit.update(observation(f"o-{pid[-2:]}", pid))
    finally:
        store.close()


def test_openemr_jwt_verified_by_jwks(facade: TestClient, emr: Emr) -> None:
    token = emr.token("user/Observation.read", **_admin())
    resp = facade.get("/fhir/Observation", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    smart = facade.get("/fhir/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == f"{emr.base}/oauth2/default/token"


def test_patient_context_from_introspection(facade: TestClient, emr: Emr, tmp_path: Path) -> None:
    _seed(tmp_path)
    scope = "patient/Observation.read patient/Patient.read"
    token = emr.token(
        scope, username="jdoe", password="p4ss", user_role="patient", email="jdoe@example.org"
    )
    h = {"Authorization": f"Bearer {token}"}
    assert ids(facade.get("/fhir/Observation", headers=h).json()) == ["Observation/o-aa"]
    assert facade.get("/fhir/Patient/" + ME, headers=h).status_code == 200
    assert facade.get("/fhir/Patient/" + OTHER, headers=h).status_code == 404
    assert facade.get("/fhir/Observation/o-bb", headers=h).status_code == 404
    # revoked at the authorization server: introspection says inactive
    assert emr.oauth.revoke(token) is True
    refused = facade.get("/fhir/Observation", headers=h)
    assert refused.status_code == 401 and "not active" in refused.text


def test_opaque_and_foreign_tokens(facade: TestClient, emr: Emr) -> None:
    refused = facade.get("/fhir/Observation", headers={"Authorization": "Bearer opaque-123"})
    assert refused.status_code == 401 and "not active" in refused.text


def test_wrong_audience_for_the_simulator(tmp_path: Path, emr: Emr) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'g.db'}", data_dir=tmp_path)
    security = _security(emr, audiences=["some-other-client"])
    with TestClient(create_app(settings, security=security)) as client:
        token = emr.token("user/Observation.read", **_admin())
        resp = client.get("/fhir/Observation", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401 and "audience" in resp.text
