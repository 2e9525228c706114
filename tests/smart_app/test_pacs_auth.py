"""The viewer proxy's PACS auth (smart_app/pacs.py) over real HTTP: OAuth2 client credentials
against the loopback OIDC gateway in front of the real Orthanc (as dcm4chee-arc behind
Keycloak), the token reused, and a revoked token replaced once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.settings import PacsSettings
from smart_app.pacs import PacsAuth, upstream
from tests.adapters.dicomweb.gateway import Gateway
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series
from tests.support.server import serve

SPEC = CtSeriesSpec(patient_id="MRN-PROXY-AUTH", slices=1)


@pytest.fixture(autouse=True)
def no_pacs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test names: the package's SMART stack exports CDSS_PACS_* for its app."""
    for name in [k for k in os.environ if k.startswith(("CDSS_PACS_", "CDSS_ORTHANC_"))]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Gateway, str]]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required: {reason}")
    with orthanc.orthanc(dicom_server=False) as server:
        with DicomwebClient(server.dicomweb_url, auth=server.auth) as client:
            client.store_instances(ct_series(SPEC))
        gw = Gateway(upstream=server.dicomweb_url, upstream_auth=server.auth)
        with serve(gw.app()) as base:
            yield gw, base


def test_oauth2_token_is_fetched_once_and_replaced_when_revoked(
    gateway: tuple[Gateway, str],
) -> None:
    gw, base = gateway
    pacs = PacsSettings(
        profile="dicomweb",
        url=f"{base}/rs",
        auth="oauth2",
        token_url=f"{base}/token",
        client_id=gw.client_id,
        client_secret=gw.client_secret,
    )
    root, auth = upstream(pacs)
    assert root == f"{base}/rs" and isinstance(auth, PacsAuth)
    assert gw.client_secret not in repr(auth)

    async def studies() -> list[int]:
        async with httpx.AsyncClient(auth=auth, timeout=30) as http:
            answers = [await http.get(f"{root}/studies") for _ in range(3)]
        return [a.status_code for a in answers]

    def run() -> list[int]:  # a thread of its own: the browser tests leave a loop running here
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(anyio.run, studies).result()

    before = gw.token_requests
    assert run() == [200, 200, 200]
    assert gw.token_requests == before + 1  # cached between requests
    gw.revoke_all()
    refused = gw.unauthorized
    assert run() == [200, 200, 200]
    assert gw.token_requests == before + 2 and gw.unauthorized == refused + 1


def test_no_auth_kind_sends_no_header(gateway: tuple[Gateway, str]) -> None:
    _, base = gateway
    root, auth = upstream(PacsSettings(profile="dicomweb", url=f"{base}/rs"))
    assert auth is None
    answer = httpx.get(f"{root}/studies", timeout=30)
    assert answer.status_code == 401  # the gateway requires a bearer token
