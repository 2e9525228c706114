"""A facade that requires tokens: an issuer whose JWKS is served on loopback, tokens minted with
its key (or a stranger's), and data for two patients seeded by a system-scoped token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from cdss.app import create_app
from cdss.settings import load_settings
from fhir_facade.security.settings import SecuritySettings
from tests.support.server import serve

ISS = "https://auth.example.org"
AUD = "https://cdss.example.org/fhir"
KID = "k1"


@dataclass
class Issuer:
    key: RSAKey
    jwks_uri: str

    def mint(
        self,
        scope: str = "user/*.rs",
        *,
        key: RSAKey | None = None,
        alg: str = "RS256",
        kid: str | None = KID,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "u1", "iat": now, "exp": now + 300}
        body |= {"scope": scope, "client_id": "app-1"}
        body |= claims
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key or self.key)

    def headers(self, scope: str = "user/*.rs", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(scope, **claims)}"}


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
    keys = FastAPI()

    @keys.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @keys.get("/jwks")
    def jwks() -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False)]}

    with serve(keys) as base:
        yield Issuer(key, f"{base}/jwks")


def security_settings(issuer: Issuer, **overrides: Any) -> SecuritySettings:
    values: dict[str, Any] = {
        "auth": "required",
        "audit": False,
        "issuers": [
            {
                "issuer": ISS,
                "audiences": [AUD],
                "jwks_uri": issuer.jwks_uri,
                "authorization_endpoint": f"{ISS}/authorize",
                "token_endpoint": f"{ISS}/token",
            }
        ],
    }
    return SecuritySettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@pytest.fixture
def make_secure_app(tmp_path: Path, issuer: Issuer) -> Callable[..., FastAPI]:
    def build(**overrides: Any) -> FastAPI:
        settings = load_settings(
            database_url=f"sqlite:///{tmp_path / 'secure.db'}",
            data_dir=tmp_path / "var",
            secret_key="test-cursor-key",
            max_body_bytes=64 * 1024,
            max_bundle_entries=20,
        )
        return create_app(settings, security=security_settings(issuer, **overrides))

    return build


@pytest.fixture
def secure_client(make_secure_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_secure_app()) as client:
        yield client


SYSTEM = "system/*.cruds"


def seed(client: TestClient, issuer: Issuer) -> None:
    """Patients p1 and p2, each with an Observation and an Encounter; a Practitioner."""
    h = issuer.headers(SYSTEM)
    for pid in ("p1", "p2"):
        put(client, h, {"resourceType": "Patient", "id": pid, "name": [{"family": pid.upper()}]})
        put(client, h, observation(f"o-{pid}", pid))
        put(
            client,
            h,
            {
                "resourceType": "Encounter",
                "id": f"e-{pid}",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"},
            },
        )
    put(client, h, {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Who"}]})


def observation(oid: str | None, pid: str, code: str = "2160-0") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/e-{pid}"},
    }
    if oid:
        body["id"] = oid
    return body


def put(client: TestClient, headers: dict[str, str], resource: dict[str, Any]) -> None:
    resp = client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers
    )
    assert resp.status_code in (200, 201), resp.text


def ids(bundle: dict[str, Any]) -> list[str]:
    return sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
    )
