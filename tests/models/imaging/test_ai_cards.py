"""CDS cards show the imaging AI's finding: the pipeline's own FHIR mapping stored in the facade,
then the real services called over the app's CDS Hooks API (prefetch fetched from the facade)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_hooks import examples as ex
from cdss.app import create_app
from cdss.settings import load_settings
from models.imaging import fhir
from models.imaging.infer import Finding

SMART = "https://smart.example.org/launch"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp_path = tmp_path_factory.mktemp("cards")
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        data_dir=tmp_path / "var",
        secret_key="test-cursor-key",
        cds_auth="disabled",
        cds_smart_app_url=SMART,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _put(http: TestClient, *resources: dict[str, Any]) -> None:
    for r in resources:
        answer = http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r)
        assert answer.status_code in (200, 201), answer.text


def _store_finding(http: TestClient, pid: str, present: bool) -> tuple[dict[str, Any], Finding]:
    now = datetime.now(UTC)
    study = ex.imaging_study(f"ct-{pid}", pid, now - timedelta(days=20), description="CT chest")
    uid = study["identifier"][0]["value"].removeprefix("urn:oid:")
    finding = Finding(
        probability=0.87 if present else 0.03,
        present=present,
        score=2.1,
        model="lung-nodule-ct@4",
        series_uid=f"{uid}.1",
        centre_mm=(-84.0, -31.5, 172.5) if present else None,
        sop_uid=f"{uid}.1.23" if present else None,
        pixel_row=39 if present else None,
        pixel_column=24 if present else None,
        slice_index=23 if present else None,
    )
    ctx = fhir.StudyContext(
        study_uid=uid,
        imaging_study_id=study["id"],
        patient=f"Patient/{pid}",
        effective=study["started"],
        issued=now.isoformat(timespec="seconds"),
    )
    _put(http, ex.patient(pid), study, *fhir.resources(finding, ctx))
    return study, finding


def _smart_links(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in card.get("links", []) if link["type"] == "smart"]


def _expected_context(study: dict[str, Any]) -> dict[str, str]:
    return {
        "view": "imaging",
        "imagingStudy": f"ImagingStudy/{study['id']}",
        "series": study["series"][0]["uid"],
    }


def test_patient_imaging_summary_lists_the_ai_finding_and_links_the_viewer(
    http: TestClient,
) -> None:
    study, _ = _store_finding(http, "p-summary", present=True)
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/x", "patientId": "p-summary"},
    }
    answer = http.post("/cds-services/patient-imaging-summary", json=body)
    assert answer.status_code == 200, answer.text
    [card] = answer.json()["cards"]
    detail = card["detail"]
    assert "AI finding: pulmonary nodule present, probability 0.87" in detail
    assert r"at \(-84, -32, 172\) mm \(LPS\)" in detail  # Markdown-escaped
    assert "model lung-nodule-ct version 4" in detail
    assert detail.count("lung-nodule-ct") == 1  # the AI report is not listed a second time
    contexts = [json.loads(link["appContext"]) for link in _smart_links(card)]
    assert _expected_context(study) in contexts
    link = next(lk for lk in _smart_links(card) if json.loads(lk["appContext"]).get("series"))
    assert link["url"] == SMART


def test_imaging_order_safety_shows_the_prior_studys_ai_finding(http: TestClient) -> None:
    study, _ = _store_finding(http, "p-order", present=False)
    draft = ex.service_request("d-ct", "p-order", ex.CT_CHEST_PLAIN)
    answer = http.post(
        "/cds-services/imaging-order-safety",
        json=ex.order_request("order-select", "p-order", [draft]),
    )
    assert answer.status_code == 200, answer.text
    cards = [
        c
        for c in answer.json()["cards"]
        if c["source"].get("topic", {}).get("code") == "prior-ai-finding"
    ]
    assert len(cards) == 1
    card = cards[0]
    assert card["summary"].startswith("Prior study of ")
    assert "no pulmonary nodule (AI probability 0.03)" in card["summary"]
    assert "model lung-nodule-ct version 4" in card["detail"]
    [link] = _smart_links(card)
    assert link["url"] == SMART and json.loads(link["appContext"]) == _expected_context(study)


def test_no_ai_finding_no_ai_card(http: TestClient) -> None:
    _put(http, ex.patient("p-none"), ex.imaging_study("ct-none", "p-none", datetime.now(UTC)))
    draft = ex.service_request("d-ct", "p-none", ex.CT_CHEST_PLAIN)
    answer = http.post(
        "/cds-services/imaging-order-safety",
        json=ex.order_request("order-select", "p-none", [draft]),
    )
    assert answer.status_code == 200, answer.text
    topics = [c["source"].get("topic", {}).get("code") for c in answer.json()["cards"]]
    assert "prior-ai-finding" not in topics
