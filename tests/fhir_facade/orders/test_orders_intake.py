"""Order intake through the facade's own API: validation, durable queueing, idempotency."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from fhir_facade.orders import hook
from fhir_facade.store.sql_store import SqlStore
from tests.fhir_facade.orders.conftest import make_patient, order, read, rows


def test_an_accepted_order_is_stored_and_queued_in_one_unit(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    answer = fhir.post("/ServiceRequest", json=order(patient_id, "2160-0"))
    assert answer.status_code == 201, answer.text
    queued = rows(store)
    assert [(r.order_id, r.target, r.state) for r in queued] == [
        (answer.json()["id"], "lab", "queued")
    ]
    assert queued[0].key == answer.json()["id"]  # the ClientSampleID


def test_an_imaging_order_is_queued_for_the_worklist(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    answer = fhir.post("/ServiceRequest", json=order(patient_id, "29252-4"))
    assert answer.status_code == 201, answer.text
    (row,) = rows(store)
    assert row.target == "imaging" and len(row.key) <= 16 and row.key.startswith("A")


def test_reposting_the_same_order_routes_it_once(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    first = fhir.post("/ServiceRequest", json=order(patient_id, ident="SAME"))
    again = fhir.post("/ServiceRequest", json=order(patient_id, ident="SAME"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(rows(store)) == 1
    assert len(fhir.get("/ServiceRequest").json()["entry"]) == 1


def test_a_transaction_of_orders_queues_each(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}",
                "resource": order(patient_id, code, ident=f"T{i}"),
                "request": {"method": "POST", "url": "ServiceRequest"},
            }
            for i, code in enumerate(("718-7", "24628-0"))
        ],
    }
    answer = fhir.post("/", json=bundle)
    assert answer.status_code == 200, answer.text
    assert sorted(r.target for r in rows(store)) == ["imaging", "lab"]


def test_a_bad_order_in_a_transaction_rolls_back_all(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    entries = [order(patient_id, "718-7", ident="G"), order(patient_id, "0000-0", ident="B")]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": e, "request": {"method": "POST", "url": "ServiceRequest"}} for e in entries
        ],
    }
    answer = fhir.post("/", json=bundle)
    assert answer.status_code == 422, answer.text
    assert rows(store) == []


def _rejected(fhir: TestClient, store: SqlStore, body: dict[str, object], why: str) -> None:
    answer = fhir.post("/ServiceRequest", json=body)
    assert answer.status_code == 422, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert why in outcome["issue"][0]["diagnostics"]
    assert rows(store) == []
    listing = fhir.get("/ServiceRequest").json()
    assert not listing.get("entry"), "a rejected order must not be stored"


def test_unknown_patient_is_rejected(fhir: TestClient, store: SqlStore) -> None:
    _rejected(fhir, store, order("nobody"), "unknown patient")


def test_unknown_code_is_rejected(fhir: TestClient, store: SqlStore, patient_id: str) -> None:
    _rejected(fhir, store, order(patient_id, "12345-6"), "order catalogue")


def test_missing_requester_is_rejected(fhir: TestClient, store: SqlStore, patient_id: str) -> None:
    body = order(patient_id)
    del body["requester"]
    _rejected(fhir, store, body, "requester")


def test_a_patient_without_mrn_is_not_linked(fhir: TestClient, store: SqlStore) -> None:
    _rejected(fhir, store, order(make_patient(fhir, mrn=None)), "not linked")


def test_a_cancelled_patient_link_is_rejected(fhir: TestClient, store: SqlStore) -> None:
    other = make_patient(fhir, mrn="MRN-200")
    merged = make_patient(
        fhir,
        mrn="MRN-201",
        link=[{"other": {"reference": f"Patient/{other}"}, "type": "replaced-by"}],
    )
    _rejected(fhir, store, order(merged), "cancelled")
    _rejected(fhir, store, order(make_patient(fhir, mrn="MRN-202", active=False)), "cancelled")


def test_drafts_and_plans_are_not_routed(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    draft = order(patient_id, "12345-6", status="draft")
    assert fhir.post("/ServiceRequest", json=draft).status_code == 201
    assert rows(store) == []


def test_revoking_before_routing_cancels_the_queued_row(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    created = fhir.post("/ServiceRequest", json=order(patient_id)).json()
    revoked = fhir.put(f"/ServiceRequest/{created['id']}", json={**created, "status": "revoked"})
    assert revoked.status_code == 200, revoked.text
    assert [r.state for r in rows(store)] == ["cancelled"]
    assert read(fhir, created["id"])["meta"]["versionId"] == "2"


def test_delete_cancels_too(fhir: TestClient, store: SqlStore, patient_id: str) -> None:
    created = fhir.post("/ServiceRequest", json=order(patient_id)).json()
    assert fhir.delete(f"/ServiceRequest/{created['id']}").status_code == 204
    assert [r.state for r in rows(store)] == ["cancelled"]


def test_with_the_hook_off_the_facade_is_plain_fhir(fhir: TestClient, store: SqlStore) -> None:
    hook.install(False)
    assert fhir.post("/ServiceRequest", json=order("nobody", "12345-6")).status_code == 201
    assert rows(store) == []


def test_editing_a_queued_order_reroutes_it(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    created = fhir.post("/ServiceRequest", json=order(patient_id, "2160-0")).json()
    (before,) = rows(store)
    changed = {**created, "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}}
    answer = fhir.put(f"/ServiceRequest/{created['id']}", json=changed)
    assert answer.status_code == 200, answer.text
    (after,) = rows(store)
    assert orjson.loads(before.payload)["keywords"] == ["CREA"]
    assert orjson.loads(after.payload)["keywords"] == ["HGB"]
    assert (after.state, after.target, after.key) == ("queued", "lab", created["id"])
    to_ct = {**changed, "code": {"coding": [{"system": "http://loinc.org", "code": "29252-4"}]}}
    assert fhir.put(f"/ServiceRequest/{created['id']}", json=to_ct).status_code == 200
    (imaging,) = rows(store)
    assert imaging.target == "imaging" and imaging.key.startswith("A")  # now an accession
    note = {**to_ct, "note": [{"text": "patient is claustrophobic"}]}
    assert fhir.put(f"/ServiceRequest/{created['id']}", json=note).status_code == 200
    assert rows(store) == [imaging]  # same procedure: nothing re-routed


def test_an_edit_to_an_unknown_code_is_refused(
    fhir: TestClient, store: SqlStore, patient_id: str
) -> None:
    created = fhir.post("/ServiceRequest", json=order(patient_id, "2160-0")).json()
    bad = {**created, "code": {"coding": [{"system": "http://loinc.org", "code": "0000-0"}]}}
    answer = fhir.put(f"/ServiceRequest/{created['id']}", json=bad)
    assert answer.status_code == 422
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert read(fhir, created["id"])["code"]["coding"][0]["code"] == "2160-0"
