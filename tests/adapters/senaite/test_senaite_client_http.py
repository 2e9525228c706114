"""The SENAITE HTTP client against the simulator served for real on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.senaite.client import SenaiteAuthError, SenaiteClient, SenaiteError
from simulators.senaite import SenaiteState, create_senaite_app
from tests.support.postgres import free_port
from tests.support.server import serve

READY = "/senaite/@@API/senaite/v1/version"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, SenaiteState]]:
    app = create_senaite_app(users={"labuser": PASSWORD})
    with serve(app, ready_path=READY) as base:
        yield base + "/senaite/@@API/senaite/v1", app.state.senaite


@pytest.fixture
def api_url(served: tuple[str, SenaiteState]) -> str:
    return served[0]


@pytest.fixture
def sim(served: tuple[str, SenaiteState]) -> Iterator[SenaiteState]:
    yield served[1]
    served[1].pending_failures.clear()


def client(api_url: str, password: str = PASSWORD, **kwargs: Any) -> SenaiteClient:
    options: dict[str, Any] = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0} | kwargs
    return SenaiteClient(api_url, username="labuser", password=password, **options)


def test_retries_5xx_then_recovers_with_one_log_line_per_retry(
    api_url: str, sim: SenaiteState, caplog: pytest.LogCaptureFixture
) -> None:
    sim.inject_failures(2, status=503)
    with (
        caplog.at_level(logging.WARNING, logger="adapters.senaite.client"),
        client(api_url) as senaite,
    ):
        version = senaite.get("version")
    assert version["version"]
    retries = [r.getMessage() for r in caplog.records]
    assert len(retries) == 2
    assert all("GET version failed" in m and "HTTP 503" in m for m in retries)
    assert "retry 1 of 3" in retries[0] and "retry 2 of 3" in retries[1]
    assert not any(PASSWORD in m for m in retries)


def test_retries_are_bounded(api_url: str, sim: SenaiteState) -> None:
    sim.inject_failures(5, status=502)
    with client(api_url, max_attempts=3) as senaite, pytest.raises(SenaiteError) as failure:
        senaite.get("version")
    assert failure.value.status == 502 and "after 3 attempts" in str(failure.value)
    assert len(sim.pending_failures) == 2


def test_writes_are_not_retried_after_reaching_the_server(api_url: str, sim: SenaiteState) -> None:
    sim.inject_failures(1, status=503)
    with client(api_url) as senaite, pytest.raises(SenaiteError) as failure:
        senaite.post("create", {"portal_type": "Client", "Name": "A", "ClientID": "A"})
    assert failure.value.status == 503
    assert sim.pending_failures == []


def test_connection_errors_are_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    dead = f"http://127.0.0.1:{free_port()}/senaite/@@API/senaite/v1"
    with (
        caplog.at_level(logging.WARNING, logger="adapters.senaite.client"),
        client(dead, max_attempts=2) as senaite,
        pytest.raises(SenaiteError) as failure,
    ):
        senaite.get("version")
    assert "ConnectError" in str(failure.value)
    assert len(caplog.records) == 1


def test_success_false_and_http_errors_raise(api_url: str) -> None:
    with client(api_url) as senaite:
        with pytest.raises(SenaiteError, match="Invalid Credentials"):
            senaite.get("login", {"__ac_name": "labuser", "__ac_password": "x"})
        with pytest.raises(SenaiteError) as missing:
            senaite.get("NoSuchType")
        assert missing.value.status == 404
        bad_date = {"modified.query:record": "soon", "modified.range:record": "min"}
        with pytest.raises(SenaiteError, match="Invalid date"):
            senaite.get("AnalysisService", bad_date)  # SENAITE's HTTP 200 with success: false


def test_wrong_password_is_caught_by_check_auth(api_url: str) -> None:
    with client(api_url) as senaite:
        assert senaite.check_auth() == "labuser"
    with client(api_url, password="wrong") as senaite:
        assert senaite.get("AnalysisService")["count"] == 0  # Plone: anonymous, silently
        with pytest.raises(SenaiteAuthError):
            senaite.check_auth()
        with pytest.raises(SenaiteAuthError):
            senaite.post("create", {"portal_type": "Client", "Name": "B", "ClientID": "B"})


def test_paging_helpers(api_url: str) -> None:
    with client(api_url, page_size=4) as senaite:
        page = senaite.search_page("AnalysisService")
        assert (len(page.items), page.count, page.next_start) == (4, 18, 4)
        keywords = [s["getKeyword"] for s in senaite.iter_search("AnalysisService")]
    assert len(keywords) == 18 == len(set(keywords))


def test_answers_that_are_not_json_objects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/html"):
            return httpx.Response(200, text="<html>maintenance</html>")
        return httpx.Response(200, json=[1, 2])

    with SenaiteClient(
        "http://lims/senaite/@@API/senaite/v1",
        username="u",
        password="p",
        transport=httpx.MockTransport(handler),
    ) as senaite:
        with pytest.raises(SenaiteError, match="not a JSON object"):
            senaite.get("html")
        with pytest.raises(SenaiteError, match="not a JSON object"):
            senaite.get("list")
