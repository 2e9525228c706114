"""Lab orders routed to the SENAITE simulator on loopback: one sample per order, the sample id
written back, status back from review states, cancel downstream, and the faults: SENAITE down
when the order is signed, and a worker killed between routing and acknowledgement."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from adapters.senaite.client import SenaiteClient
from adapters.senaite.source import SenaiteSource
from adapters.senaite.terminology import SAMPLE_ID_SYSTEM
from fhir_facade.orders.lab import LabRouter, make_client
from fhir_facade.orders.worker import Worker
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import cursor_key, sync_source
from tests.fhir_facade.orders.conftest import Lis, order, read, rows, settings
from tests.support.postgres import free_port


def _sign(fhir: TestClient, patient_id: str, *codes: str) -> str:
    body = order(patient_id, codes[0])
    body["code"]["coding"] = [{"system": "http://loinc.org", "code": c} for c in codes]
    answer = fhir.post("/ServiceRequest", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _sync(store: SqlStore, lis: Lis) -> None:
    client = SenaiteClient(f"{lis.url}/@@API/senaite/v1", username="admin", password="admin")
    sync_source(store, SenaiteSource(client, base_url=lis.url))
    client.close()


def test_an_order_creates_exactly_one_sample_for_the_patient(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "2160-0", "718-7")
    worker = Worker(store, settings(tmp_path, lis.url))
    assert worker.run_once().routed == 1
    assert worker.run_once().routed == 0  # nothing routed twice
    (sample,) = lis.samples()
    assert sample["ClientSampleID"] == order_id
    assert sample["MedicalRecordNumber"]["value"] == "MRN-100"
    analyses = lis.http.get("Analysis", params={"getRequestID": sample["id"], "complete": "yes"})
    assert sorted(a["Keyword"] for a in analyses.json()["items"]) == ["CREA", "HGB"]
    sr = read(fhir, order_id)
    assert {"system": SAMPLE_ID_SYSTEM, "value": sample["id"]} in sr["identifier"]
    assert sr["meta"]["versionId"] == "2" and sr["status"] == "active"
    assert [r.state for r in rows(store)] == ["routed"]
    worker.close()


def test_published_sample_completes_the_order(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "2160-0")
    worker = Worker(store, settings(tmp_path, lis.url))
    worker.run_once()
    (sample,) = lis.samples()
    lis.update({"uid": sample["uid"], "transition": "receive"})
    (analysis,) = lis.http.get("Analysis", params={"getRequestID": sample["id"]}).json()["items"]
    lis.update({"uid": analysis["uid"], "Result": "1.1"})
    for step in ("submit", "verify"):
        lis.update({"uid": analysis["uid"], "transition": step})
    assert worker.run_once().completed == 0  # verified is not yet the end
    lis.update({"uid": sample["uid"], "transition": "publish"})
    _sync(store, lis)  # the results come into the facade the usual way
    assert worker.run_once().completed == 1
    (obs,) = fhir.get("/Observation", params={"based-on": f"ServiceRequest/{order_id}"}).json()[
        "entry"
    ]
    assert obs["resource"]["valueQuantity"]["value"] == 1.1
    assert obs["resource"]["code"]["coding"][0]["code"] == "2160-0"
    assert obs["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    sr = read(fhir, order_id)
    assert (sr["status"], sr["meta"]["versionId"]) == ("completed", "3")
    history = fhir.get(f"/ServiceRequest/{order_id}/_history").json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["completed", "active", "active"]
    assert [r.state for r in rows(store)] == ["closed"]
    worker.close()


def test_order_links_on_results_survive_a_resync(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "2160-0")
    worker = Worker(store, settings(tmp_path, lis.url))
    worker.run_once()
    (sample,) = lis.samples()
    lis.update({"uid": sample["uid"], "transition": "receive"})
    (analysis,) = lis.http.get("Analysis", params={"getRequestID": sample["id"]}).json()["items"]
    lis.update({"uid": analysis["uid"], "Result": "1.4"})
    for step in ("submit", "verify"):
        lis.update({"uid": analysis["uid"], "transition": step})
    lis.update({"uid": sample["uid"], "transition": "publish"})
    _sync(store, lis)
    assert worker.run_once().completed == 1
    linked = {"reference": f"ServiceRequest/{order_id}"}

    def results() -> list[dict[str, Any]]:
        found = []
        for rtype in ("Observation", "DiagnosticReport"):
            bundle = fhir.get(f"/{rtype}", params={"based-on": f"ServiceRequest/{order_id}"})
            found += [e["resource"] for e in bundle.json().get("entry", [])]
        return found

    before = results()
    assert sorted(r["resourceType"] for r in before) == ["DiagnosticReport", "Observation"]
    with store.unit() as unit:  # re-sync everything SENAITE has, as after a cursor loss
        unit.set_state(cursor_key("senaite"), "2000-01-01T00:00:00+00:00|0")
    _sync(store, lis)
    after = results()
    assert all(linked in r["basedOn"] for r in after)
    assert {(r["id"], r["meta"]["versionId"]) for r in after} == {
        (r["id"], r["meta"]["versionId"]) for r in before
    }  # re-synced as unchanged: the order link is part of what the sync maps
    worker.close()


def test_editing_a_delivered_order_is_refused_with_the_way_out(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "2160-0")
    worker = Worker(store, settings(tmp_path, lis.url))
    assert worker.run_once().routed == 1
    current = read(fhir, order_id)
    changed = {**current, "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}}
    answer = fhir.put(f"/ServiceRequest/{order_id}", json=changed)
    assert answer.status_code == 422
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text = outcome["issue"][0]["diagnostics"]
    (sample,) = lis.samples()
    assert sample["id"] in text and "Revoke it" in text
    assert read(fhir, order_id)["meta"]["versionId"] == current["meta"]["versionId"]
    same = {**current, "note": [{"text": "fasting"}]}
    assert fhir.put(f"/ServiceRequest/{order_id}", json=same).status_code == 200
    assert [r.state for r in rows(store)] == ["routed"]
    assert worker.run_once().routed == 0 and len(lis.samples()) == 1
    worker.close()


def test_a_sample_cancelled_in_the_lab_revokes_the_order(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "718-7")
    worker = Worker(store, settings(tmp_path, lis.url))
    worker.run_once()
    (sample,) = lis.samples()
    lis.update({"uid": sample["uid"], "transition": "cancel"})
    worker.run_once()
    assert read(fhir, order_id)["status"] == "revoked"
    worker.close()


def test_revoking_the_order_cancels_the_sample(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "718-7")
    worker = Worker(store, settings(tmp_path, lis.url))
    worker.run_once()
    sr = read(fhir, order_id)
    assert fhir.put(f"/ServiceRequest/{order_id}", json={**sr, "status": "revoked"}).is_success
    assert worker.run_once().cancelled == 1
    (sample,) = lis.samples()
    assert sample["review_state"] == "cancelled"
    assert [r.state for r in rows(store)] == ["cancelled"]
    worker.close()


def test_deleting_a_received_order_reports_why_it_is_not_cancelled(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "718-7")
    worker = Worker(store, settings(tmp_path, lis.url))
    worker.run_once()
    (sample,) = lis.samples()
    lis.update({"uid": sample["uid"], "transition": "receive"})
    (analysis,) = lis.http.get("Analysis", params={"getRequestID": sample["id"]}).json()["items"]
    lis.update({"uid": analysis["uid"], "Result": "13.1"})
    lis.update({"uid": analysis["uid"], "transition": "submit"})
    assert fhir.delete(f"/ServiceRequest/{order_id}").status_code == 204
    assert worker.run_once().refused == 1  # SENAITE refuses `cancel` once results are in
    (row,) = rows(store)
    assert row.state == "cancel-refused" and row.last_error
    assert lis.samples()[0]["ClientSampleID"] == order_id
    worker.close()


def test_lis_down_when_signed_then_delivered_once_it_is_back(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    order_id = _sign(fhir, patient_id, "2345-7")
    down = Worker(store, settings(tmp_path, f"http://127.0.0.1:{free_port()}/senaite"))
    first = down.run_once()
    assert (first.routed, first.retried) == (0, 1)
    (row,) = rows(store)
    assert (row.state, row.attempts) == ("queued", 1) and row.last_error
    down.close()
    time.sleep(0.06)  # past the (test-sized) backoff
    up = Worker(store, settings(tmp_path, lis.url))
    assert up.run_once().routed == 1
    assert [s["ClientSampleID"] for s in lis.samples()] == [order_id]
    up.close()


def test_a_worker_killed_after_routing_does_not_duplicate_the_sample(
    fhir: TestClient, store: SqlStore, patient_id: str, lis: Lis, tmp_path: Path
) -> None:
    """The sample was created, then the process died before the outbox row said `routed`:
    the row is still queued, and the next worker finds the sample by its ClientSampleID."""
    order_id = _sign(fhir, patient_id, "2345-7")
    cfg = settings(tmp_path, lis.url)
    (row,) = rows(store)
    LabRouter(make_client(cfg), cfg).route(row.key, orjson.loads(row.payload))  # then "killed"
    assert rows(store)[0].state == "queued"
    worker = Worker(store, cfg)
    assert worker.run_once().routed == 1
    (sample,) = lis.samples()
    assert sample["ClientSampleID"] == order_id
    assert {"system": SAMPLE_ID_SYSTEM, "value": sample["id"]} in read(fhir, order_id)["identifier"]
    worker.close()
