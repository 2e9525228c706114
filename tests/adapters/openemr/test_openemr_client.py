"""OpenEMRClient against scripted answers: OpenEMR's quirks, 401 renewal, bounded retries, and
that no token ever reaches the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from adapters.openemr.client import OpenEMRClient, OpenEMRError
from tests.support.paths import FIXTURES as SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES / "openemr"
BASE = "https://emr.example/apis/default/fhir"
SECRET = "eyJ.secret-token-value"


class FakeAuth:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0

    def token(self) -> str:
        self.issued += 1
        return f"{SECRET}-{self.issued}"

    def invalidate(self) -> None:
        self.invalidated += 1


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], auth: FakeAuth | None = None
) -> tuple[OpenEMRClient, FakeAuth]:
    auth = auth or FakeAuth()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenEMRClient(BASE, auth, attempts=3, backoff=0, http=http), auth


def collection(*resources: dict[str, Any]) -> dict[str, Any]:
    bundle: dict[str, Any] = recorded("patient.search-bundle.empty.json")
    bundle["total"] = len(resources)
    if resources:
        bundle["entry"] = [{"fullUrl": f"{BASE}/X/{r['id']}", "resource": r} for r in resources]
    return bundle


def test_search_reads_the_collection_bundle() -> None:
    seen: list[httpx.Request] = []
    patient = recorded("patient.read.json")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=collection(patient))

    client, _ = client_for(handler)
    result = client.search("Patient", [("_lastUpdated", "ge2021-09-21T17:08:03+00:00")])
    assert result.resources == [patient]
    assert (result.bundle_type, result.total) == ("collection", 1)
    assert seen[0].url.path == "/apis/default/fhir/Patient"
    assert seen[0].url.params["_lastUpdated"] == "ge2021-09-21T17:08:03+00:00"
    assert "%2B00%3A00" in str(seen[0].url)  # '+' encoded, not read as a space
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}-1"


def test_empty_search_and_next_links() -> None:
    first = collection(recorded("patient.read.json"))
    first["link"].append({"relation": "next", "url": f"{BASE}/Patient?page=2"})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=recorded("patient.search-bundle.empty.json"))
        return httpx.Response(200, json=first)

    client, _ = client_for(handler)
    assert len(client.search("Patient").resources) == 1


def test_read_404_empty_array_is_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/missing"):
            return httpx.Response(404, json=[])
        return httpx.Response(200, json=recorded("encounter.read.json"))

    client, _ = client_for(handler)
    assert client.read("Encounter", "missing") is None
    found = client.read("Encounter", "946da61d-6b95-4f8e-abe5-534a25913b71")
    assert found is not None and found["status"] == "finished"


def test_401_renews_the_token_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"].endswith("-1"):
            return httpx.Response(401, json={"error": "An error occurred", "code": 401})
        return httpx.Response(200, json=collection())

    client, auth = client_for(handler)
    assert client.search("Patient").resources == []
    assert (auth.issued, auth.invalidated) == (2, 1)


def test_second_401_is_an_error() -> None:
    client, auth = client_for(lambda _r: httpx.Response(401, json={"message": "revoked"}))
    with pytest.raises(OpenEMRError) as caught:
        client.search("Patient")
    assert caught.value.status == 401 and "revoked" in str(caught.value)
    assert auth.invalidated == 1


def test_5xx_is_retried_then_succeeds() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(503, json={"internalErrors": ["busy"]})
        return httpx.Response(200, json=collection())

    client, _ = client_for(handler)
    assert client.search("Observation").resources == []
    assert len(calls) == 3


def test_retries_are_bounded() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, json={"internalErrors": ["boom"]})

    client, _ = client_for(handler)
    with pytest.raises(OpenEMRError) as caught:
        client.search("Observation")
    assert caught.value.status == 500 and len(calls) == 3


def test_connect_errors_are_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=collection())

    client, _ = client_for(handler)
    assert client.search("Patient").resources == []
    down, _ = client_for(lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)))
    with pytest.raises(OpenEMRError, match="unreachable"):
        down.search("Patient")


def test_client_errors_are_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            403, json={"error": "An error occurred", "message": "Scope", "code": 403}
        )

    client, _ = client_for(handler)
    with pytest.raises(OpenEMRError) as caught:
        client.read("Patient", "x")
    assert caught.value.status == 403 and len(calls) == 1


def test_tokens_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter(
        [httpx.Response(401), httpx.Response(502), httpx.Response(200, json=collection())]
    )
    client, _ = client_for(lambda _r: next(answers))
    with caplog.at_level(logging.DEBUG):
        client.search("Patient")
    assert caplog.records and SECRET not in caplog.text
    assert "Patient" in caplog.text
