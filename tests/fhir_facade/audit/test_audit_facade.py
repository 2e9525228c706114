"""Every facade access leaves an AuditEvent with the audit profile's fields; only admins read
them, and nobody writes them through the API."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhir_facade.audit import Actor, Event, build_event
from fhir_facade.search.parameters import params_for
from tests.fhir_facade import factories as f
from tests.fhir_facade.security.conftest import Issuer, observation, seed

ADMIN = "system/AuditEvent.rs cdss/admin"


@pytest.fixture
def audited(make_secure_app: Callable[..., FastAPI], issuer: Issuer) -> Iterator[TestClient]:
    app = make_secure_app(audit=True, admin_subjects=["Practitioner/auditor"])
    with TestClient(app) as client:
        seed(client, issuer)
        yield client


def _events(client: TestClient, issuer: Issuer, query: str = "_count=500") -> list[dict[str, Any]]:
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    resp = client.get(f"/fhir/AuditEvent?{query}", headers=issuer.headers(ADMIN))
    assert resp.status_code == 200, resp.text
    return [e["resource"] for e in resp.json().get("entry", [])]


def _subtype(event: dict[str, Any]) -> str:
    return str(event["subtype"][0]["code"])


def test_reads_searches_writes_and_refusals_are_audited(
    audited: TestClient, issuer: Issuer
) -> None:
    h = issuer.headers(
        "patient/Observation.cruds patient/Patient.rs",
        patient="p1",
        fhirUser="Practitioner/dr1",
        purpose_of_use="TREAT",
    )
    assert audited.get("/fhir/Patient/p1", headers=h).status_code == 200
    assert audited.get("/fhir/Observation?code=2160-0", headers=h).status_code == 200
    assert (
        audited.post("/fhir/Observation", json=observation(None, "p1"), headers=h).status_code
        == 201
    )
    assert audited.get("/fhir/Encounter", headers=h).status_code == 403
    assert audited.get("/fhir/Observation").status_code == 401
    events = [
        e
        for e in _events(audited, issuer)
        if e["agent"][0]["who"].get("reference") == "Practitioner/dr1"
    ]
    by_kind = {(_subtype(e), e["action"]): e for e in events}

    read = by_kind[("read", "R")]
    f.validate_r4(read)
    assert read["type"]["code"] == "rest" and read["outcome"] == "0"
    assert read["recorded"].endswith("Z")
    user = read["agent"][0]
    assert user["requestor"] is True and user["altId"] == "u1"
    assert user["network"] == {"address": "testclient", "type": "2"}
    assert user["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    assert read["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    assert read["agent"][1]["who"]["identifier"]["value"] == "app-1"
    assert read["source"]["observer"]["display"] == "cdss FHIR facade"
    assert {"reference": "Patient/p1"} in [e.get("what") for e in read["entity"]]

    search = next(e for e in events if e["entity"][0].get("name") == "Observation")
    assert (_subtype(search), search["action"], search["outcome"]) == ("search-type", "E", "0")
    query = next(e["query"] for e in search["entity"] if "query" in e)
    assert base64.b64decode(query).decode() == "code=2160-0"
    assert search["entity"][0]["name"] == "Observation"

    created = by_kind[("create", "C")]
    assert created["outcome"] == "0"
    refused = next(e for e in events if e["entity"][0].get("name") == "Encounter")
    assert refused["outcome"] == "4"
    assert "HTTP 403" in refused["outcomeDesc"]
    anonymous = [
        e
        for e in _events(audited, issuer)
        if e["agent"][0]["who"].get("display", "").startswith("anonymous")
    ]
    assert any(e["outcome"] == "4" and "HTTP 401" in e["outcomeDesc"] for e in anonymous)


def test_transactions_audit_each_entry(audited: TestClient, issuer: Issuer) -> None:
    h = issuer.headers("system/*.cruds", sub="loader")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(None, "p2"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"request": {"method": "DELETE", "url": "Observation/o-p1"}},
        ],
    }
    assert audited.post("/fhir/", json=bundle, headers=h).status_code == 200
    mine = [
        e
        for e in _events(audited, issuer)
        if e["agent"][0]["who"].get("identifier", {}).get("value") == "loader"
    ]
    kinds = sorted((_subtype(e), e["action"]) for e in mine)
    assert kinds == [("create", "C"), ("delete", "D"), ("transaction", "E")]


def test_only_admins_read_the_audit_and_nobody_writes_it(
    audited: TestClient, issuer: Issuer
) -> None:
    audited.get("/fhir/Patient/p1", headers=issuer.headers("user/*.rs"))
    assert _events(audited, issuer, "_count=5")  # an admin sees them
    for scope in ("system/AuditEvent.rs", "system/*.rs cdss/admin", "user/*.cruds", "patient/*.rs"):
        resp = audited.get("/fhir/AuditEvent", headers=issuer.headers(scope, patient="p1"))
        assert resp.status_code == 403, scope
    # an admin by subject (CDSS_FHIR_ADMIN_SUBJECTS) rather than by scope
    by_subject = issuer.headers("user/AuditEvent.rs", fhirUser="Practitioner/auditor")
    assert audited.get("/fhir/AuditEvent", headers=by_subject).status_code == 200
    # other types' histories and searches never carry AuditEvents to non-admins
    history = audited.get("/fhir/_history", headers=issuer.headers("user/*.rs")).json()
    assert all(
        e["resource"]["resourceType"] != "AuditEvent"
        for e in history.get("entry", [])
        if "resource" in e
    )
    event = _events(audited, issuer, "_count=1")[0]
    admin = issuer.headers("system/AuditEvent.cruds cdss/admin system/*.cruds")
    assert (
        audited.put(f"/fhir/AuditEvent/{event['id']}", json=event, headers=admin).status_code == 403
    )
    assert audited.delete(f"/fhir/AuditEvent/{event['id']}", headers=admin).status_code == 403
    assert audited.post("/fhir/AuditEvent", json=event, headers=admin).status_code == 403
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": event, "request": {"method": "POST", "url": "AuditEvent"}}],
    }
    assert audited.post("/fhir/", json=bundle, headers=admin).status_code == 403


def test_audit_builder_is_valid_r4_for_dicomweb_and_exports() -> None:
    actor = Actor(
        issuer="https://auth",
        subject="u",
        client_id="c",
        address="10.0.0.1",
        purpose_of_use=("TREAT",),
    )
    for kind, subtype in (
        ("dicom-query", "qido"),
        ("dicom-access", "wado"),
        ("export", "omop-parquet"),
    ):
        event = build_event(
            Event(kind, subtype, "R", 200, "ImagingStudy/1", "StudyInstanceUID=1.2", "p1"), actor
        )
        f.validate_r4(event)
        assert event["type"]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
    assert "patient" in params_for("AuditEvent")
