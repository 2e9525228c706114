"""batch and transaction Bundles (FHIR R4 3.1.0.11): reference resolution, processing order,
conditional create, per-entry failure in a batch, the entry limit and Prefer: return=minimal.
Response Bundles are cross-checked with the strict R4 models of `fhirclient`."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cdss.app import create_app
from cdss.settings import Settings
from tests.fhir_facade import factories as f

PAT = "urn:uuid:0f9d6c5e-1111-4a6b-9c1d-000000000001"
ENC = "urn:uuid:0f9d6c5e-1111-4a6b-9c1d-000000000002"


def _statuses(bundle: dict[str, Any]) -> list[str]:
    return [e["response"]["status"].split()[0] for e in bundle["entry"]]


def _location_id(entry: dict[str, Any]) -> str:
    _rtype, rid, history, version = entry["response"]["location"].split("/")
    assert history == "_history" and version.isdigit()
    return rid


def test_transaction_resolves_urn_uuid_references(client: TestClient) -> None:
    entries = [
        f.post_entry(f.observation(PAT, encounter={"reference": ENC}, hasMember=[])),
        f.post_entry(f.encounter(PAT, "2024-01-01T10:00:00Z"), ENC),
        f.post_entry(f.patient("Urn", identifier=[f.identifier("urn-1")]), PAT),
        {
            "resource": {
                "resourceType": "Provenance",
                "target": [{"reference": PAT}, {"reference": ENC}],
                "recorded": "2024-01-01T10:00:00Z",
                "agent": [{"who": {"reference": PAT}}],
            },
            "request": {"method": "POST", "url": "Provenance"},
        },
    ]
    out = f.transaction(client, entries)
    f.validate_r4(out)
    assert out["type"] == "transaction-response"
    assert _statuses(out) == ["201", "201", "201", "201"]
    obs_id, enc_id, pat_id, prov_id = (_location_id(e) for e in out["entry"])

    obs = f.json_of(client.get(f"/fhir/Observation/{obs_id}"), 200)
    assert obs["subject"] == {"reference": f"Patient/{pat_id}"}
    assert obs["encounter"] == {"reference": f"Encounter/{enc_id}"}
    enc = f.json_of(client.get(f"/fhir/Encounter/{enc_id}"), 200)
    assert enc["subject"] == {"reference": f"Patient/{pat_id}"}
    prov = f.json_of(client.get(f"/fhir/Provenance/{prov_id}"), 200)
    assert prov["target"] == [
        {"reference": f"Patient/{pat_id}"},
        {"reference": f"Encounter/{enc_id}"},
    ]
    assert prov["agent"][0]["who"] == {"reference": f"Patient/{pat_id}"}
    # the index saw the resolved references
    assert f.ids(f.search(client, "Observation", {"patient": pat_id})) == [obs_id]
    assert f.ids(f.search(client, "Encounter", {"subject": f"Patient/{pat_id}"})) == [enc_id]
    for e in out["entry"]:
        assert "urn:uuid" not in str(e["resource"])


def test_transaction_processing_order_and_response_order(client: TestClient) -> None:
    """DELETE, then POST, then PUT, then GET, whatever the order in the Bundle; the response
    keeps the request's order (R4 3.1.0.11.2)."""
    f.put(client, {**f.patient("Order", identifier=[f.identifier("del-me")]), "id": "to-delete"})
    entries = [
        {"request": {"method": "GET", "url": "Patient?family=Order&_sort=given"}},
        {
            "resource": {
                **f.patient("Order", ["B"], identifier=[f.identifier("put-1")]),
                "id": "put-1",
            },
            "request": {"method": "PUT", "url": "Patient/put-1"},
        },
        {
            # would match the PUT's identifier if PUTs ran before POSTs
            **f.post_entry(f.patient("Order", ["A"], identifier=[f.identifier("put-1")])),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={f.MRN}|put-1",
            },
        },
        {
            # would match the deleted patient if DELETEs ran after POSTs
            **f.post_entry(f.patient("Order", ["C"], identifier=[f.identifier("del-me")])),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={f.MRN}|del-me",
            },
        },
        {"request": {"method": "DELETE", "url": "Patient/to-delete"}},
        {"request": {"method": "GET", "url": "Patient/to-delete"}},
    ]
    # the last GET runs after the DELETE, so it fails, and with it the whole transaction
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    f.outcome(client.post("/fhir/", json=bundle), 410, expression="Bundle.entry[5]")
    f.json_of(client.get("/fhir/Patient/to-delete"), 200)
    assert f.search(client, "Patient", {"family": "Order"})["total"] == 1

    bundle["entry"] = entries[:5]
    out = f.json_of(client.post("/fhir/", json=bundle), 200)
    f.validate_r4(out)

    assert _statuses(out) == ["200", "201", "201", "201", "204"]
    assert out["entry"][1]["response"]["location"] == "Patient/put-1/_history/1"
    post_a, post_c = _location_id(out["entry"][2]), _location_id(out["entry"][3])
    assert post_a != "put-1"
    search = out["entry"][0]["resource"]
    assert search["type"] == "searchset"
    assert f.ids(search) == [post_a, "put-1", post_c]  # sees every write, not the deleted one
    f.outcome(client.get("/fhir/Patient/to-delete"), 410)


def test_transaction_conditional_create_and_rollback(
    client: TestClient,
) -> None:
    existing = f.create(client, f.patient("Known", identifier=[f.identifier("known-1")]))
    entries = [
        {
            **f.post_entry(f.patient("Dup", identifier=[f.identifier("known-1")]), PAT),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={f.MRN}|known-1",
            },
        },
        f.post_entry(f.observation(PAT, valueQuantity=f.quantity(4.2))),
    ]
    out = f.transaction(client, entries)
    f.validate_r4(out)
    assert _statuses(out) == ["200", "201"]
    assert out["entry"][0]["response"]["location"] == f"Patient/{existing['id']}/_history/1"
    assert out["entry"][0]["resource"] == existing
    obs = out["entry"][1]["resource"]
    assert obs["subject"] == {"reference": f"Patient/{existing['id']}"}
    assert f.search(client, "Patient", {"identifier": f"{f.MRN}|known-1"})["total"] == 1
    assert f.search(client, "Patient", {"family": "Dup"})["total"] == 0

    # several matches: the transaction fails as a whole
    f.create(client, f.patient("Known2", identifier=[f.identifier("known-1")]))
    resp = client.post(
        "/fhir/", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    f.outcome(resp, 412, expression="Bundle.entry[0]")
    assert f.search(client, "Observation", {"patient": existing["id"]})["total"] == 1
    _transaction_precondition_failure_rolls_back_everything(client)


def _transaction_precondition_failure_rolls_back_everything(client: TestClient) -> None:
    f.put(client, {**f.patient("V1"), "id": "guarded"})
    f.put(client, {**f.patient("V2"), "id": "guarded"}, status=200)
    entries = [
        f.post_entry(f.patient("Rolled")),
        {
            "resource": {**f.patient("Stale"), "id": "guarded"},
            "request": {"method": "PUT", "url": "Patient/guarded", "ifMatch": 'W/"1"'},
        },
    ]
    resp = client.post(
        "/fhir/", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    f.outcome(resp, 412, expression="Bundle.entry[1]")
    assert f.search(client, "Patient", {"family": "Rolled"})["total"] == 0
    assert f.json_of(client.get("/fhir/Patient/guarded"), 200)["meta"]["versionId"] == "2"


def test_batch_entries_fail_alone(client: TestClient) -> None:
    entries = [
        f.post_entry(f.patient("BatchOk")),
        f.post_entry(f.patient("BatchBad", birthDate="not-a-date")),
        {"request": {"method": "GET", "url": "Patient/not-there"}},
        {
            "resource": {**f.patient("BatchPut"), "id": "b-1"},
            "request": {"method": "PUT", "url": "Patient/b-1"},
        },
        {"request": {"method": "GET", "url": "Patient?birthdate=2020-13"}},
        {"request": {"method": "GET", "url": "Patient?family=batch"}},
    ]
    out = f.transaction(client, entries, kind="batch")
    f.validate_r4(out)
    assert out["type"] == "batch-response"
    assert _statuses(out) == ["201", "422", "404", "201", "400", "200"]
    bad = out["entry"][1]["response"]["outcome"]
    assert bad["resourceType"] == "OperationOutcome"
    assert "Patient.birthDate" in bad["issue"][0]["expression"][0]
    assert out["entry"][2]["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert out["entry"][4]["response"]["outcome"]["issue"][0]["expression"] == ["birthdate"]
    assert out["entry"][5]["resource"]["type"] == "searchset"
    assert f.search(client, "Patient", {"family": "BatchBad"})["total"] == 0
    f.json_of(client.get("/fhir/Patient/b-1"), 200)


def test_bundle_entry_limit(client: TestClient, settings: Settings) -> None:
    small = {"request": {"method": "GET", "url": "Patient/x"}}
    post = f.post_entry(f.patient("Limit"))
    too_many = {"resourceType": "Bundle", "type": "batch", "entry": [post] + [small] * 1000}
    issue = f.outcome(client.post("/fhir/", json=too_many), 413)
    assert issue["code"] == "too-costly" and "1000" in issue["diagnostics"]
    too_many["type"] = "transaction"
    f.outcome(client.post("/fhir/", json=too_many), 413)
    assert f.search(client, "Patient", {"family": "Limit"})["total"] == 0
    # exactly at the default limit the Bundle is processed (this one fails on its first entry)
    at_limit = {"resourceType": "Bundle", "type": "transaction", "entry": [small] * 1000}
    f.outcome(client.post("/fhir/", json=at_limit), 404, expression="Bundle.entry[0]")

    # the limit comes from the settings
    with TestClient(create_app(settings.model_copy(update={"max_bundle_entries": 2}))) as other:
        two = {"resourceType": "Bundle", "type": "batch", "entry": [post, small]}
        assert _statuses(f.json_of(other.post("/fhir/", json=two), 200)) == ["201", "404"]
        f.outcome(other.post("/fhir/", json={**two, "entry": [post, small, small]}), 413)
    assert f.search(client, "Patient", {"family": "Limit"})["total"] == 1


def test_prefer_return_minimal_omits_resources(client: TestClient) -> None:
    def entries(tag: str) -> list[dict[str, Any]]:
        return [
            f.post_entry(f.patient(f"Min{tag}")),
            {
                "resource": {**f.patient(f"Min{tag}"), "id": f"min-{tag}"},
                "request": {"method": "PUT", "url": f"Patient/min-{tag}"},
            },
            {"request": {"method": "GET", "url": f"Patient?family=Min{tag}"}},
        ]

    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": entries(kind)}
        resp = client.post("/fhir/", json=bundle, headers={"Prefer": "return=minimal"})
        out = f.json_of(resp, 200)
        f.validate_r4(out)
        assert _statuses(out) == ["201", "201", "200"]
        for e in out["entry"][:2]:
            assert "resource" not in e
            assert e["response"]["location"] and e["response"]["etag"] == 'W/"1"'
        assert out["entry"][2]["resource"]["type"] == "searchset"  # a read's result is the point

        full = f.transaction(client, entries(f"{kind}-full"), kind=kind)
        assert all("resource" in e for e in full["entry"])


def test_transaction_at_the_base_url_itself(client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [f.post_entry(f.patient("Base"))]}
    resp = client.post("/fhir", json=bundle, follow_redirects=False)
    assert _statuses(f.json_of(resp, 200)) == ["201"]
