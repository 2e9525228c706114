"""Auth variants and bad-input handling over real HTTP: a loopback gateway (gateway.py) issues
client-credentials tokens and checks bearer tokens in front of the real Orthanc, and injects
5xx answers, malformed DICOM JSON and hanging requests. Basic auth runs against Orthanc itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.dicomweb.auth import BearerAuth, ClientCredentialsAuth
from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.errors import PacsError, PacsUnavailable
from adapters.dicomweb.factory import pacs_client
from adapters.dicomweb.settings import PacsSettings
from adapters.dicomweb.source import DicomwebSource
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import cursor_key, sync_source
from tests.adapters.dicomweb.gateway import Fault, Gateway
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series
from tests.support.server import serve

SPEC = CtSeriesSpec(patient_id="MRN-GW-1", slices=2)
ONLY = {"StudyInstanceUID": SPEC.study_uid}


@dataclass
class Rig:
    server: orthanc.OrthancServer
    gateway: Gateway
    rs: str  # the gateway's DICOMweb root
    token_url: str


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the DICOMweb auth tests: {reason}")
    with orthanc.orthanc(dicom_server=False) as server:
        with DicomwebClient(server.dicomweb_url, auth=server.auth) as client:
            client.store_instances(ct_series(SPEC))
        gateway = Gateway(upstream=server.dicomweb_url, upstream_auth=server.auth)
        with serve(gateway.app()) as base:
            yield Rig(server, gateway, f"{base}/rs", f"{base}/token")


@pytest.fixture(autouse=True)
def reset(rig: Rig) -> Iterator[None]:
    rig.gateway.faults.clear()
    rig.gateway.requests.clear()
    rig.gateway.expires_in = 300
    yield
    rig.gateway.faults.clear()


def oauth(rig: Rig, **kwargs: object) -> ClientCredentialsAuth:
    g = rig.gateway
    return ClientCredentialsAuth(rig.token_url, g.client_id, g.client_secret, **kwargs)  # type: ignore[arg-type]


def test_client_credentials_token_is_cached_and_refreshed_before_expiry(rig: Rig) -> None:
    now = [time.time()]
    auth = oauth(rig, leeway=30, clock=lambda: now[0])
    with DicomwebClient(rig.rs, auth=auth) as client:
        assert len(client.search_for_studies(search_filters=ONLY)) == 1
        client.search_for_series(SPEC.study_uid)
        assert auth.fetches == 1  # one token for both calls
        now[0] += 300 - 29  # inside the leeway: refreshed before it is sent
        unauthorized = rig.gateway.unauthorized
        client.search_for_studies(search_filters=ONLY)
        assert auth.fetches == 2 and rig.gateway.unauthorized == unauthorized


def test_a_revoked_token_is_replaced_once(rig: Rig) -> None:
    auth = oauth(rig)
    with DicomwebClient(rig.rs, auth=auth) as client:
        client.search_for_studies(search_filters=ONLY)
        rig.gateway.revoke_all()
        assert len(client.search_for_studies(search_filters=ONLY)) == 1
    assert auth.fetches == 2


def test_factory_builds_oauth2_and_bearer_from_settings(rig: Rig) -> None:
    g = rig.gateway
    settings = PacsSettings(
        profile="dicomweb",
        url=rig.rs,
        auth="oauth2",
        token_url=rig.token_url,
        client_id=g.client_id,
        client_secret=g.client_secret,
    )
    bearer = PacsSettings(profile="dicomweb", url=rig.rs, auth="bearer", token=g.static_token)
    for configured in (settings, bearer):
        client = pacs_client(configured)
        try:
            assert len(client.search_for_studies(search_filters=ONLY)) == 1
        finally:
            client.close()


def test_wrong_credentials_are_refused_without_retries(rig: Rig) -> None:
    with DicomwebClient(rig.rs, auth=BearerAuth("not-a-token"), backoff=0.01) as client:
        before = len(rig.gateway.requests)
        with pytest.raises(PacsError) as refused:
            client.search_for_studies(search_filters=ONLY)
    assert refused.value.status == 401 and len(rig.gateway.requests) == before + 1
    user, _ = rig.server.auth
    wrong = DicomwebClient(rig.server.dicomweb_url, auth=(user, "wrong"), backoff=0.01)
    with wrong, pytest.raises(PacsError) as basic:
        wrong.search_for_studies(search_filters=ONLY)
    assert basic.value.status == 401
    bad_client = ClientCredentialsAuth(rig.token_url, rig.gateway.client_id, "wrong-secret")
    unregistered = DicomwebClient(rig.rs, auth=bad_client, attempts=2, backoff=0.01)
    with unregistered, pytest.raises(PacsUnavailable, match="token endpoint"):
        unregistered.search_for_studies(search_filters=ONLY)


def test_secrets_never_reach_the_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    auth = oauth(rig)
    rig.gateway.faults.append(Fault("5xx", "/studies", times=1))
    with caplog.at_level(logging.DEBUG), DicomwebClient(rig.rs, auth=auth, backoff=0.01) as c:
        c.search_for_studies(search_filters=ONLY)
        rig.gateway.revoke_all()
        c.search_for_studies(search_filters=ONLY)
    assert "retry 1/3" in caplog.text  # the log did record the calls
    for secret in (rig.gateway.client_secret, *rig.gateway.tokens, rig.server.auth[1]):
        assert secret not in caplog.text
    assert rig.gateway.client_secret not in repr(auth)


def test_5xx_is_retried_then_reported(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    g = rig.gateway
    with DicomwebClient(rig.rs, auth=BearerAuth(g.static_token), backoff=0.01) as client:
        g.faults.append(Fault("5xx", "/studies", times=2))
        assert len(client.search_for_studies(search_filters=ONLY)) == 1
        g.faults[:] = [Fault("5xx", "/studies")]
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(PacsUnavailable) as down:
            client.search_for_studies(search_filters=ONLY)
    assert down.value.status == 503 and "after 4 attempts: HTTP 503" in str(down.value)
    assert caplog.text.count("retry") == 3


def test_malformed_json_is_retried_then_a_clear_error(rig: Rig) -> None:
    g = rig.gateway
    with DicomwebClient(rig.rs, auth=BearerAuth(g.static_token), backoff=0.01) as client:
        g.faults.append(Fault("malformed", "/studies", times=1))
        assert len(client.search_for_studies(search_filters=ONLY)) == 1
        g.faults[:] = [Fault("malformed", "/series")]
        with pytest.raises(PacsError, match="malformed DICOM JSON"):
            client.search_for_series(SPEC.study_uid)


def test_a_hanging_pacs_times_out(rig: Rig) -> None:
    g = rig.gateway
    g.hang_s = 3.0
    g.faults.append(Fault("hang", "/studies"))
    started = time.monotonic()
    client = DicomwebClient(
        rig.rs, auth=BearerAuth(g.static_token), timeout=0.3, attempts=2, backoff=0.01
    )
    with client, pytest.raises(PacsUnavailable, match="Timeout"):
        client.search_for_studies(search_filters=ONLY)
    assert time.monotonic() - started < 2.5


def test_a_failing_pacs_syncs_nothing_and_the_next_run_resumes(rig: Rig, tmp_path: Path) -> None:
    g = rig.gateway
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")

    def source() -> DicomwebSource:
        client = DicomwebClient(rig.rs, auth=BearerAuth(g.static_token), attempts=2, backoff=0.01)
        return DicomwebSource(client, dicomweb_public_url="http://x/dicom-web", base_url=rig.rs)

    try:
        g.faults.append(Fault("5xx", "/instances"))  # fails after the listing and the series
        with pytest.raises(PacsUnavailable):
            sync_source(store, source())
        with store.unit() as unit:
            assert unit.get_state(cursor_key("pacs")) is None  # the cursor did not move
        g.faults.clear()
        report = sync_source(store, source())
        assert report.counts["ImagingStudy"].created == 1
    finally:
        store.close()
