"""The upstream (write-through) store, against the project's own facade as the upstream server.

A second app configured with CDSS_STORE=upstream serves the FHIR API; every write must land in
the upstream (read back from it directly), reads and searches come from it, upstream errors
reach the client as OperationOutcomes, and an unreachable upstream is a 503.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from adapters.base import Batch
from cdss.app import create_app
from cdss.settings import load_settings
from fhir_facade.store.config import StoreSettings
from fhir_facade.store.factory import open_store
from fhir_facade.store.upstream import UpstreamStore
from fhir_facade.store.upstream_client import UpstreamClient
from fhir_facade.sync.engine import cursor_key, sync_source
from tests.fhir_facade import factories as f
from tests.fhir_facade.sync.test_sync_engine import ScriptedSource, patient, result
from tests.support.server import serve


def _settings(tmp: Path, name: str) -> Any:
    return load_settings(
        database_url=f"sqlite:///{tmp / f'{name}.db'}",
        data_dir=tmp / name,
        secret_key=f"{name}-cursor-key",
        cds_auth="disabled",
    )


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The project's facade on a loopback port, backed by its own SQLite store."""
    monkeypatch.setenv("CDSS_STORE", "sql")
    with serve(create_app(_settings(tmp_path, "upstream"))) as base:
        yield f"{base}/fhir"


def _front(tmp: Path, monkeypatch: pytest.MonkeyPatch, upstream_url: str) -> FastAPI:
    monkeypatch.setenv("CDSS_STORE", "upstream")
    monkeypatch.setenv("CDSS_UPSTREAM_FHIR_URL", upstream_url)
    monkeypatch.setenv("CDSS_UPSTREAM_TIMEOUT_S", "2")
    return create_app(_settings(tmp, "front"))


@pytest.fixture
def front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: str) -> Iterator[TestClient]:
    with TestClient(_front(tmp_path, monkeypatch, upstream)) as client:
        yield client


def _direct(upstream: str, path: str) -> httpx.Response:
    return httpx.get(f"{upstream}/{path}", timeout=5)


def test_crud_writes_through_and_reads_back(front: TestClient, upstream: str) -> None:
    made = f.create(front, f.patient("Upstream", identifier=[f.identifier("U-1")]))
    pid = made["id"]
    assert made["meta"]["versionId"] == "1"
    there = _direct(upstream, f"Patient/{pid}")
    assert there.status_code == 200 and there.json()["name"][0]["family"] == "Upstream"

    read = f.json_of(front.get(f"/fhir/Patient/{pid}"), 200)
    assert read == there.json()

    changed = {**read, "name": [{"family": "Renamed"}]}
    updated = f.json_of(front.put(f"/fhir/Patient/{pid}", json=changed), 200)
    assert updated["meta"]["versionId"] == "2"
    assert _direct(upstream, f"Patient/{pid}").json()["name"][0]["family"] == "Renamed"
    same = f.json_of(front.put(f"/fhir/Patient/{pid}", json=changed), 200)
    assert same["meta"]["versionId"] == "2"  # no-op update makes no version

    old = f.json_of(front.get(f"/fhir/Patient/{pid}/_history/1"), 200)
    assert old["name"][0]["family"] == "Upstream"

    assert front.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert _direct(upstream, f"Patient/{pid}").status_code == 410
    f.outcome(front.get(f"/fhir/Patient/{pid}"), 410)  # the upstream's 410, as an outcome
    f.outcome(front.get("/fhir/Patient/no-such-id"), 404)

    history = f.json_of(front.get(f"/fhir/Patient/{pid}/_history"), 200)
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]


def test_search_paging_and_references(front: TestClient, upstream: str) -> None:
    pid = f.create(front, f.patient("Paged"))["id"]
    other = f.create(front, f.patient("Other"))["id"]
    for value in range(5):
        f.create(front, f.observation(f"Patient/{pid}", valueQuantity=f.quantity(value)))
    f.create(front, f.observation(f"Patient/{other}"))

    # an absolute reference to the front's own base must reach the upstream as Patient/id
    first = f.search(
        front,
        "Observation",
        {"subject": f"http://testserver/fhir/Patient/{pid}", "_count": "2", "_sort": "_id"},
    )
    seen = f.ids(first)
    assert first["total"] == 5 and len(seen) == 2
    page = first
    while (nxt := f.link(page, "next")) is not None:
        assert nxt.startswith("http://testserver/fhir/Observation?_cursor=")  # front's links
        token = nxt.partition("_cursor=")[2]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert urlsplit(upstream).netloc.encode() not in raw  # no internal host in cursors
        page = f.search(front, f.local(nxt)[len("/fhir/") :])
        seen += f.ids(page)
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen)

    with_patient = f.search(
        front, "Observation", {"subject": f"Patient/{pid}", "_include": "Observation:subject"}
    )
    assert f.ids(with_patient, "include") == [pid]
    counted = f.search(front, "Observation", {"_summary": "count"})
    assert counted["total"] == 6 and "entry" not in counted


def test_history_pages_follow_the_upstream(front: TestClient) -> None:
    pid = f.create(front, f.patient("History"))["id"]
    for n in range(4):
        f.json_of(
            front.put(f"/fhir/Patient/{pid}", json=f.patient(f"H{n}", id=pid)),
            200,
        )
    page = f.json_of(front.get(f"/fhir/Patient/{pid}/_history", params={"_count": "2"}), 200)
    versions = [e["response"]["etag"] for e in page["entry"]]
    while (nxt := f.link(page, "next")) is not None:
        page = f.json_of(front.get(f.local(nxt)), 200)
        versions += [e["response"]["etag"] for e in page["entry"]]
    assert versions == [f'W/"{n}"' for n in (5, 4, 3, 2, 1)]


def test_errors_are_outcomes_and_a_failed_transaction_is_compensated(
    front: TestClient, upstream: str
) -> None:
    f.outcome(front.post("/fhir/Patient", json={"resourceType": "Patient", "gender": 7}), 422)
    pid = f.create(front, f.patient("Versioned"))["id"]
    stale = front.put(
        f"/fhir/Patient/{pid}",
        json=f.patient("Stale", id=pid),
        headers={"If-Match": 'W/"7"'},
    )
    f.outcome(stale, 412)

    entries = [
        f.post_entry(f.patient("Rolled back", identifier=[f.identifier("TX-1")])),
        {
            "resource": f.patient("Late", id=pid),
            "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'},
        },
    ]
    failed = front.post(
        "/fhir/", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    f.outcome(failed, 412)
    left = _direct(upstream, "Patient?identifier=TX-1").json()
    assert left.get("total") == 0, left  # the created entry was compensated
    assert _direct(upstream, f"Patient/{pid}").json()["meta"]["versionId"] == "1"


def test_named_state_commits_with_the_unit(tmp_path: Path, upstream: str) -> None:
    settings = StoreSettings(store="upstream", upstream_fhir_url=upstream)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", settings)
    assert isinstance(store, UpstreamStore)
    try:
        with pytest.raises(RuntimeError), store.unit() as unit:
            unit.set_state("cursor", "1")
            raise RuntimeError("the batch failed")
        with store.read_unit() as unit:
            assert unit.get_state("cursor") is None
        with store.unit() as unit:
            unit.set_state("cursor", "2")
            assert unit.get_state("cursor") == "2"
        with store.read_unit() as unit:
            assert unit.get_state("cursor") == "2"
        store.check()
    finally:
        store.close()


def _server_error_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ready")
    async def ready() -> JSONResponse:
        return JSONResponse({})

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def broken(path: str) -> JSONResponse:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "exception", "diagnostics": "disk full"}],
        }
        return JSONResponse(outcome, 500, media_type="application/fhir+json")

    return app


def _gateway_outcome(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(f.FHIR_JSON)
    body: dict[str, Any] = resp.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
    return body


def test_upstream_failure_is_502_and_unreachable_is_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        serve(_server_error_app(), ready_path="/ready") as base,
        TestClient(_front(tmp_path, monkeypatch, f"{base}/fhir")) as client,
    ):
        body = _gateway_outcome(client.get("/fhir/Patient/x"), 502)
        assert "disk full" in body["issue"][0]["diagnostics"]
        down_at = base
    with TestClient(_front(tmp_path, monkeypatch, f"{down_at}/fhir")) as client:
        resp = client.post("/fhir/Patient", json=f.patient("Nowhere"))
        _gateway_outcome(resp, 503)
        assert resp.headers["retry-after"] == "5"
        _gateway_outcome(client.get("/fhir/Patient", params={"name": "x"}), 503)
        assert client.get("/readyz").status_code == 503


def test_paging_links_are_kept_relative_to_the_upstream_base() -> None:
    client = UpstreamClient("http://hapi:8080/fhir")
    try:
        rel = client.relative
        assert (
            rel("http://hapi:8080/fhir?_getpages=abc&_getpagesoffset=20")
            == "?_getpages=abc&_getpagesoffset=20"
        )
        assert rel("https://public.example/fhir/Patient?_cursor=x") == "Patient?_cursor=x"
        assert rel("http://hapi:8080/other/Patient?x=1") is None  # outside the base path
        assert rel("file:///fhir/etc/passwd") is None
        assert rel(None) is None
    finally:
        client.close()


def test_sync_writes_through_idempotently_and_links_by_mrn(tmp_path: Path, upstream: str) -> None:
    """The sync engine on the upstream store: batches with their cursor, no new versions for a
    redelivered record, an MRN reference linked to the patient stored in the upstream."""
    settings = StoreSettings(store="upstream", upstream_fhir_url=upstream)
    store = open_store(f"sqlite:///{tmp_path / 'sync.db'}", settings)
    try:
        batches = [Batch([patient("A")], cursor="1"), Batch([result("A", 1)], cursor="2")]
        first = sync_source(store, ScriptedSource("emr", batches))
        assert first.counts["Patient"].created == 1 and first.counts["Observation"].created == 1
        again = sync_source(store, ScriptedSource("emr2", [Batch([result("A", 1)], cursor=None)]))
        assert again.counts["Observation"].updated == 1  # another source's tag: a change
        same = sync_source(store, ScriptedSource("emr2", [Batch([result("A", 1)], cursor=None)]))
        assert same.counts["Observation"].unchanged == 1
        with store.read_unit() as unit:
            assert unit.get_state(cursor_key("emr")) == "2"
        pid = patient("A")["id"]
        bundle = _direct(upstream, f"Observation?patient={pid}").json()
        assert bundle["total"] == 1
        assert bundle["entry"][0]["resource"]["meta"]["versionId"] == "2"
    finally:
        store.close()


def test_transaction_and_conditional_create(front: TestClient, upstream: str) -> None:
    urn = "urn:uuid:0b6b3e2c-5d1a-4c1e-9a57-3f1f0f6f7a10"
    done = f.transaction(
        front,
        [
            f.post_entry(f.patient("Tx", identifier=[f.identifier("TX-9")]), urn),
            f.post_entry(f.observation(urn)),
        ],
    )
    pid = done["entry"][0]["resource"]["id"]
    obs_id = done["entry"][1]["resource"]["id"]
    stored = _direct(upstream, f"Observation/{obs_id}").json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"  # urn replaced by the id
    again = front.post(
        "/fhir/Patient",
        json=f.patient("Tx"),
        headers={"If-None-Exist": f"identifier={f.MRN}|TX-9"},
    )
    assert f.json_of(again, 200)["id"] == pid  # conditional create found it in the upstream
    assert _direct(upstream, "Patient?identifier=TX-9").json()["total"] == 1
