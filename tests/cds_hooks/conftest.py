"""Fixtures for the CDS Hooks tests: keys, a configured app, and a signing CDS client harness.

The harness plays a CDS client as the spec describes it: every call carries a fresh ES384 (or
RS384) JWT whose `aud` is the exact URL called. Keys: the spec's example private key
(fixtures/spec-examples/cds-hooks/jwk-private...) and keys generated per test session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey, RSAKey

from cds_hooks.client import Key, import_private_key, sign_client_jwt
from cdss.app import create_app
from cdss.settings import load_settings

SPEC = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "spec-examples" / "cds-hooks"
ISS = "https://ehr.example.org/"
BASE = "http://testserver"


def spec_json(name: str) -> Any:
    return json.loads((SPEC / name).read_text())


@dataclass(frozen=True)
class Keys:
    ec: ECKey
    rsa: RSAKey
    spec: ECKey
    other: ECKey  # a key no client trusts

    def public_jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**self.ec.as_dict(private=False), "kid": "ec-1", "alg": "ES384", "use": "sig"},
                {**self.rsa.as_dict(private=False), "kid": "rsa-1", "alg": "RS384", "use": "sig"},
                spec_json("jwks-public.cds-hooks-2.0.1.json")["keys"][0],
            ]
        }


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        ec=ECKey.generate_key("P-384"),
        rsa=RSAKey.generate_key(2048),
        spec=import_private_key(spec_json("jwk-private.cds-hooks-2.0.1.json")),  # type: ignore[arg-type]
        other=ECKey.generate_key("P-384"),
    )


def client_config(keys: Keys, **extra: Any) -> dict[str, Any]:
    return {"iss": ISS, "jwks": keys.public_jwks(), **extra}


@pytest.fixture
def make_app(tmp_path: Path, keys: Keys) -> Callable[..., FastAPI]:
    """An app on SQLite (or `database_url`) trusting ISS; settings overridable per test."""

    def build(database_url: str | None = None, clients: Any = None, **overrides: Any) -> FastAPI:
        settings = load_settings(
            database_url=database_url or f"sqlite:///{tmp_path / 'cds.db'}",
            data_dir=tmp_path / "var",
            secret_key="test-cursor-key",
            cds_clients=clients if clients is not None else [client_config(keys)],
            **overrides,
        )
        return create_app(settings)

    return build


@dataclass
class Harness:
    """A CDS client: signs each call for its exact URL."""

    http: TestClient | httpx.Client
    key: Key
    kid: str = "ec-1"
    alg: str = "ES384"
    iss: str = ISS
    base: str = BASE
    sent: list[str] = field(default_factory=list)

    def token(self, path: str, **kw: Any) -> str:
        kw.setdefault("kid", self.kid)
        kw.setdefault("alg", self.alg)
        return sign_client_jwt(self.key, iss=kw.pop("iss", self.iss), aud=self.base + path, **kw)

    def headers(self, path: str, **kw: Any) -> dict[str, str]:
        token = self.token(path, **kw)
        self.sent.append(token)
        return {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.headers(path, **kw))

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers(path, **kw))

    def call(self, service: str, body: Any, **kw: Any) -> httpx.Response:
        return self.post(f"/cds-services/{service}", body, **kw)


@pytest.fixture
def cds_app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def cds(cds_app: FastAPI, keys: Keys) -> Iterator[Harness]:
    with TestClient(cds_app) as http:
        yield Harness(http, keys.ec)


def put(http: TestClient | httpx.Client, *resources: dict[str, Any]) -> None:
    """Store resources in the facade through its FHIR API (PUT = update-as-create)."""
    for r in resources:
        resp = http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r)
        assert resp.status_code in (200, 201), resp.text


@pytest.fixture(name="spec")
def _spec() -> Callable[[str], Any]:
    """Load an official example by file name."""
    return spec_json


@pytest.fixture(name="put")
def _put() -> Callable[..., None]:
    return put
