"""BackendServicesAuth and PasswordGrantAuth against the simulated OpenEMR, over real HTTP.

The simulator and the clients share one injected clock, so "five minutes later" is a call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI

import tests.support.server as support_server
from adapters.openemr.auth import (
    AuthError,
    BackendServicesAuth,
    KeyPair,
    PasswordGrantAuth,
    TokenProvider,
    make_rsa_jwk,
    register_backend_client,
    register_client,
)
from simulators.openemr.oauth import OAuthServer, UserAccount
from tests.support.postgres import free_port

SYSTEM_SCOPES = "system/Patient.read system/Observation.rs"
WRITER = UserAccount("cohort", "w-pass", "Practitioner/7a0c0000-0000-4000-8000-00000000c0de")
WRITER_SCOPES = "openid offline_access api:oemr user/patient.write user/Patient.write"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Sim:
    oauth: OAuthServer
    clock: Clock
    grants: list[str]  # grant_type of every /token request, in order
    http: httpx.Client

    @property
    def token_url(self) -> str:
        return f"{self.oauth.oauth_base}/token"


@pytest.fixture
def sim() -> Iterator[Sim]:
    port = free_port()
    clock = Clock()
    oauth = OAuthServer(f"http://127.0.0.1:{port}", clock=clock, users={"cohort": WRITER})
    app = FastAPI()
    app.include_router(oauth.router())
    grants: list[str] = []

    def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/token"):
            grants.append(parse_qs(request.content.decode())["grant_type"][0])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(support_server, "free_port", lambda: port)
        with (
            support_server.serve(app, ready_path="/oauth2/default/jwk"),
            httpx.Client(timeout=10, event_hooks={"request": [record]}) as http,
        ):
            yield Sim(oauth, clock, grants, http)


def _backend(sim: Sim, keys: KeyPair | None = None) -> BackendServicesAuth:
    keys = keys or make_rsa_jwk()
    client = register_backend_client(
        sim.oauth.oauth_base, client_name="cdss sync", scopes=SYSTEM_SCOPES, jwks=keys.jwks
    )
    assert client.client_secret  # private clients get one, even if they never use it
    return BackendServicesAuth(
        sim.token_url,
        client.client_id,
        keys.private_jwk,
        scopes=SYSTEM_SCOPES,
        http=sim.http,
        clock=sim.clock,
    )


def test_backend_services_token_is_cached_until_near_expiry(sim: Sim) -> None:
    auth = _backend(sim)
    provider: TokenProvider = auth
    first = provider.token()
    grant = sim.oauth.verify(first)
    assert grant is not None
    assert grant.scopes == set(SYSTEM_SCOPES.split())
    assert provider.token() == first
    sim.clock.now += 300 - 31
    assert provider.token() == first
    sim.clock.now += 2  # now inside the 30 s margin
    second = provider.token()
    assert second != first
    assert sim.oauth.verify(second) is not None
    assert sim.grants == ["client_credentials", "client_credentials"]


def test_invalidate_forces_a_new_token(sim: Sim) -> None:
    auth = _backend(sim)
    first = auth.token()
    auth.invalidate()
    assert auth.token() != first
    assert len(sim.grants) == 2


def test_concurrent_callers_share_one_request(sim: Sim) -> None:
    auth = _backend(sim)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(auth.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1
    assert sim.grants == ["client_credentials"]


def test_refused_assertion_raises_without_leaking_secrets(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    keys = make_rsa_jwk()
    auth = _backend(sim)
    auth = BackendServicesAuth(
        sim.token_url,
        auth.client_id,
        keys.private_jwk,  # not the registered key
        scopes=SYSTEM_SCOPES,
        http=sim.http,
        clock=sim.clock,
    )
    caplog.set_level(logging.DEBUG, logger="adapters.openemr.auth")
    with pytest.raises(AuthError) as refused:
        auth.token()
    assert refused.value.error == "invalid_client"
    assert refused.value.status == 400
    assert str(keys.private_jwk["d"]) not in str(refused.value) + caplog.text
    assert str(keys.private_jwk["d"]) not in repr(keys)  # the private half never prints


def test_registration_refusal_is_an_auth_error(sim: Sim) -> None:
    with pytest.raises(AuthError) as refused:
        register_client(sim.oauth.oauth_base, {"application_type": "private", "scope": "openid"})
    assert refused.value.error == "invalid_redirect_uri"


def _writer(sim: Sim, password: str = WRITER.password) -> PasswordGrantAuth:
    client = register_client(
        sim.oauth.oauth_base,
        {
            "application_type": "private",
            "client_name": "cohort writer",
            "redirect_uris": ["http://localhost/unused"],
            "scope": WRITER_SCOPES,
        },
    )
    assert "secret" not in repr(client)
    return PasswordGrantAuth(
        sim.token_url,
        client_id=client.client_id,
        client_secret=client.client_secret,
        username=WRITER.username,
        password=password,
        scopes=WRITER_SCOPES,
        http=sim.http,
        clock=sim.clock,
    )


def test_password_grant_refreshes_with_the_refresh_token(sim: Sim) -> None:
    auth = _writer(sim)
    first = auth.token()
    grant = sim.oauth.verify(first)
    assert grant is not None
    assert {"api:oemr", "user/patient.write"} <= grant.scopes
    assert grant.user == WRITER.fhir_user
    sim.clock.now += 3600 - 10
    second = auth.token()
    assert second != first
    sim.clock.now += 3600 - 10
    auth.token()
    assert sim.grants == ["password", "refresh_token", "refresh_token"]


def test_password_grant_signs_in_again_when_refresh_is_refused(sim: Sim) -> None:
    auth = _writer(sim)
    auth.token()
    sim.clock.now += 91 * 24 * 3600  # past the refresh token's three months
    assert sim.oauth.verify(auth.token()) is not None
    assert sim.grants == ["password", "refresh_token", "password"]


def test_wrong_password_is_an_auth_error(sim: Sim) -> None:
    auth = _writer(sim, password="nope")
    with pytest.raises(AuthError) as refused:
        auth.token()
    assert refused.value.error == "invalid_grant"
    assert "nope" not in str(refused.value)
