"""No secret or token ever reaches a log line.

A representative flow runs with every logger at DEBUG: OAuth token requests to the OpenEMR
simulator (client secret, password, client assertions), authenticated FHIR calls to the facade
(JWKS verification and introspection with the facade's client secret), a refused forged token,
a CDS Hooks call lending an access token in fhirAuthorization (fetched back from the facade),
and a sync from OpenEMR with its backend-services credentials. A wire tap on every server
collects each credential that crossed the wire; the captured log records (with their extra
fields) and everything written to stdout/stderr must contain none of them.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from joserfc.jwk import ECKey
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_hooks import examples as ex
from cds_hooks.client import sign_client_jwt
from cdss.app import create_app
from cdss.settings import load_settings
from cdss.sources import SourceSettings, build_sources
from fhir_facade.security.settings import SecuritySettings
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.runner import Runner
from simulators.openemr.app import create_openemr_app
from simulators.openemr.oauth import UserAccount
from simulators.openemr.oauth.context import DEFAULT_ADMIN
from tests.support.postgres import free_port
from tests.support.server import serve

ME = "9f1b1c2e-0000-4000-8000-0000000000aa"
PASSWORD = "portal-pw-7f3a9c51e2"
PORTAL = UserAccount("jdoe", PASSWORD, f"Patient/{ME}", role="patient", email="jdoe@example.org")
SENSITIVE_FIELDS = {
    "password",
    "client_secret",
    "client_assertion",
    "token",
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "id_token",
    "registration_access_token",
    "d",
    "p",
    "q",
}


class WireTap:
    """ASGI wrapper remembering every credential in requests and responses."""

    def __init__(self, app: ASGIApp, found: set[str]) -> None:
        self.app, self.found = app, found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key.lower() == b"authorization":
                self._authorization(value.decode())
        body = bytearray()

        async def tapped_receive() -> Message:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                self._fields(bytes(body))
            return message

        out = bytearray()

        async def tapped_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                out.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self._fields(bytes(out))
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)

    def _authorization(self, value: str) -> None:
        scheme, _, credential = value.partition(" ")
        self.found.add(credential)
        if scheme.lower() == "basic":
            _user, _, secret = base64.b64decode(credential).decode().partition(":")
            self.found.add(secret)

    def _fields(self, raw: bytes) -> None:
        try:
            doc = json.loads(raw)
        except ValueError:
            pairs = parse_qsl(raw.decode("utf-8", "replace"))
            self.found.update(v for k, v in pairs if k in SENSITIVE_FIELDS)
            return
        self._walk(doc)

    def _walk(self, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SENSITIVE_FIELDS and isinstance(value, str):
                    self.found.add(value)
                self._walk(value)
        elif isinstance(node, list):
            for item in node:
                self._walk(item)


@pytest.fixture
def every_logger_at_debug() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)}
    root = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    logging.getLogger().setLevel(root)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_or_token_in_debug_logs(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    every_logger_at_debug: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: set[str] = set()
    port = free_port()
    emr = f"http://127.0.0.1:{port}"
    emr_app = create_openemr_app(public_base=emr, users={"admin": DEFAULT_ADMIN, "jdoe": PORTAL})
    cds_key = ECKey.generate_key("P-384", parameters={"kid": "cds-1"})
    with serve(WireTap(emr_app, secrets), ready_path="/apis/default/fhir/metadata", port=port):  # type: ignore[arg-type]
        # a confidential client registered over HTTP: its secret comes back in the response
        reg = httpx.post(
            f"{emr}/oauth2/default/registration",
            json={
                "application_type": "private",
                "client_name": "cdss facade",
                "redirect_uris": ["http://127.0.0.1/cb"],
                "scope": "openid patient/Observation.read patient/Patient.read "
                "patient/AllergyIntolerance.read patient/MedicationRequest.read "
                "user/Observation.read",
            },
        ).json()
        oauth = f"{emr}/oauth2/default"
        security = SecuritySettings(  # type: ignore[call-arg]
            _env_file=None,
            auth="required",
            audit=True,
            issuers=[
                {
                    "issuer": oauth,
                    "require_iss": False,
                    "audiences": [reg["client_id"]],
                    "jwks_uri": f"{oauth}/jwk",
                    "introspection_endpoint": f"{oauth}/introspect",
                    "client_id": reg["client_id"],
                    "client_secret": reg["client_secret"],
                }
            ],
        )
        app_port = free_port()
        base = f"http://127.0.0.1:{app_port}"
        settings = load_settings(
            database_url=f"sqlite:///{tmp_path / 'cdss.db'}",
            data_dir=tmp_path / "var",
            secret_key="cursor-key-4b1d2e9f7a",
            log_level="DEBUG",
            cds_fetch_timeout_s=10,
            cds_fetch_budget_s=10,
            cds_clients=[
                {
                    "iss": "https://ehr.example.org/",
                    "jwks": {"keys": [cds_key.as_dict(private=False)]},
                    "fhir_servers": [f"{base}/fhir"],
                }
            ],
        )
        secrets.add("cursor-key-4b1d2e9f7a")
        app = create_app(settings, security=security)
        with serve(WireTap(app, secrets), port=app_port):  # type: ignore[arg-type]
            # token request with the patient's password, then FHIR calls with the token
            token = httpx.post(
                f"{oauth}/token",
                data={
                    "grant_type": "password",
                    "username": "jdoe",
                    "password": PASSWORD,
                    "user_role": "patient",
                    "email": "jdoe@example.org",
                    "scope": "patient/Observation.read patient/Patient.read "
                    "patient/AllergyIntolerance.read patient/MedicationRequest.read",
                },
                auth=(reg["client_id"], reg["client_secret"]),
            ).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{base}/fhir/Observation", headers=bearer).status_code == 200
            assert httpx.get(f"{base}/fhir/Patient/{ME}", headers=bearer).status_code in (200, 404)
            forged = "forged-token-value-9d8c7b6a5f4e"
            secrets.add(forged)
            assert (
                httpx.get(
                    f"{base}/fhir/Observation", headers={"Authorization": f"Bearer {forged}"}
                ).status_code
                == 401
            )
            # a CDS call lending the token for the facade itself as fhirServer
            body = ex.order_request(
                "order-sign", ME, [ex.service_request("d1", ME, ex.CT_CHEST_CONTRAST)]
            )
            body["fhirServer"] = f"{base}/fhir"
            body["fhirAuthorization"] = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 60,
                "scope": "patient/*.read",
                "subject": "cdss",
            }
            url = f"{base}/cds-services/imaging-order-safety"
            jwt = sign_client_jwt(cds_key, iss="https://ehr.example.org/", aud=url, kid="cds-1")
            resp = httpx.post(
                url, json=body, headers={"Authorization": f"Bearer {jwt}"}, timeout=30
            )
            assert resp.status_code == 200, resp.text
            # a sync from OpenEMR with backend-services credentials (client assertion, token)
            sources = build_sources(
                SourceSettings(_env_file=None, data_dir=tmp_path / "sync", openemr_url=emr),  # type: ignore[call-arg]
                only="openemr",
            )
            store = SqlStore(f"sqlite:///{tmp_path / 'cdss.db'}")
            try:
                Runner(store, sources).run_once()
            finally:
                store.close()
            saved = json.loads((tmp_path / "sync" / "openemr-backend-client.json").read_text())
            secrets.update(
                str(v)
                for k, v in saved["private_jwk"].items()
                if k in ("d", "p", "q", "dp", "dq", "qi")
            )
            app.state.audit.flush()
            time.sleep(0.2)

    secrets = {s for s in secrets if len(s) >= 12}
    assert token in secrets and jwt in secrets and reg["client_secret"] in secrets
    assert any(s.count(".") == 2 and s not in (token, jwt) for s in secrets), (
        "no client assertion seen"
    )
    assert len(caplog.records) > 50  # DEBUG really was on
    captured = capfd.readouterr()
    text = "\n".join(
        [f"{r.getMessage()} {r.__dict__!r} {r.exc_text or ''}" for r in caplog.records]
        + [captured.out, captured.err]
    )
    leaked = sorted(s[:12] + "..." for s in secrets if s in text)
    assert leaked == [], f"secrets in the logs: {leaked}"
