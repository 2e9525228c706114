"""Each card kind of the three services, with prefetch and with fallback fetch from the facade.

Clinical content is the clinical modules' (tested there); here: that the service turns each
finding into the right card, with the right suggestion or link, per draft order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_hooks import examples as ex
from cds_hooks.cards import Source, card
from cds_hooks.registry import CardContributor
from tests.cds_hooks.conftest import Harness

IMAGING, LAB, SUMMARY = "imaging-order-safety", "lab-order-stewardship", "patient-imaging-summary"
NOW = datetime.now(UTC)


def _prefetch(pid: str = "p1", **override: Any) -> dict[str, Any]:
    base = {
        "patient": ex.patient(pid),
        "renal": ex.bundle([ex.egfr("e1", pid, 80, ex.days_ago(NOW, 2))]),
        "allergies": ex.bundle([]),
        "medications": ex.bundle([]),
        "studies": ex.bundle([]),
        "orders": ex.bundle([]),
    }
    return {**base, **override}


def _cards(cds: Harness, service: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = cds.call(service, body)
    assert resp.status_code == 200, resp.text
    return resp.json()["cards"]


def _by_kind(cards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["source"]["topic"]["code"]: c for c in cards}


def _sign(
    drafts: list[dict[str, Any]], prefetch: dict[str, Any] | None, hook: str = "order-sign"
) -> dict[str, Any]:
    return ex.order_request(hook, "p1", drafts, prefetch=prefetch)


def test_egfr_below_30_suggests_the_same_study_without_contrast_as_a_whole_update(
    cds: Harness,
) -> None:
    draft = ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)
    draft["reasonCode"] = [{"text": "staging"}]
    prefetch = _prefetch(renal=ex.bundle([ex.egfr("e1", "p1", 24, ex.days_ago(NOW, 3))]))
    found = _by_kind(_cards(cds, IMAGING, _sign([draft], prefetch)))
    c = found["egfr-below-30"]
    assert c["indicator"] == "warning" and "24" in c["summary"]
    assert c["source"]["url"].startswith("https://")
    (action,) = c["suggestions"][0]["actions"]
    assert action["type"] == "update"
    updated = action["resource"]
    assert updated["code"]["coding"][0]["code"] == ex.CT_CHEST_PLAIN[0]
    assert {k: v for k, v in updated.items() if k != "code"} == {
        k: v for k, v in draft.items() if k != "code"
    }


def test_a_creatinine_alone_is_turned_into_an_egfr(cds: Harness) -> None:
    prefetch = _prefetch(
        patient=ex.patient("p1", birth_date="1946-01-01", gender="female"),
        renal=ex.bundle([ex.creatinine("c1", "p1", 3.0, ex.days_ago(NOW, 1))]),
    )
    found = _by_kind(
        _cards(
            cds, IMAGING, _sign([ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)], prefetch)
        )
    )
    assert "egfr-below-30" in found and "CKD-EPI 2021" in found["egfr-below-30"]["detail"]


def test_no_recent_creatinine_suggests_ordering_one(cds: Harness) -> None:
    old = ex.egfr("e1", "p1", 70, ex.days_ago(NOW, 400))
    prefetch = _prefetch(renal=ex.bundle([old]))
    body = _sign([ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)], prefetch)
    body["context"]["encounterId"] = "enc-1"
    c = _by_kind(_cards(cds, IMAGING, body))["no-recent-creatinine"]
    (action,) = c["suggestions"][0]["actions"]
    assert action["type"] == "create"
    sr = action["resource"]
    assert sr["resourceType"] == "ServiceRequest" and sr["status"] == "draft" and "id" not in sr
    assert sr["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "2160-0",
        "display": "Creatinine [Mass/volume] in Serum or Plasma",
    }
    assert sr["subject"] == {"reference": "Patient/p1"}
    assert sr["encounter"] == {"reference": "Encounter/enc-1"}
    assert sr["requester"] == {"reference": "Practitioner/example"}


def test_metformin_hold_advice_needs_egfr_below_30_and_iodinated_contrast(cds: Harness) -> None:
    low = ex.bundle([ex.egfr("e1", "p1", 25, ex.days_ago(NOW, 1))])
    meds = ex.bundle([ex.metformin("m1", "p1")])
    ct = ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)
    mr = ex.service_request("d2", "p1", ex.MR_BRAIN_CONTRAST)
    found = _by_kind(_cards(cds, IMAGING, _sign([ct], _prefetch(renal=low, medications=meds))))
    assert found["hold-metformin"]["indicator"] == "warning"
    found = _by_kind(_cards(cds, IMAGING, _sign([mr], _prefetch(renal=low, medications=meds))))
    assert "hold-metformin" not in found and "egfr-below-30" in found  # GBCA: no hold (ACR)
    ok = ex.bundle([ex.egfr("e1", "p1", 60, ex.days_ago(NOW, 1))])
    assert "hold-metformin" not in _by_kind(
        _cards(cds, IMAGING, _sign([ct], _prefetch(renal=ok, medications=meds)))
    )


def test_contrast_allergy_is_critical_for_the_matching_contrast_only(cds: Harness) -> None:
    allergy = ex.bundle([ex.contrast_allergy("a1", "p1")])
    ct = ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)
    mr = ex.service_request("d2", "p1", ex.MR_BRAIN_CONTRAST)
    plain = ex.service_request("d3", "p1", ex.CT_CHEST_PLAIN)
    cards = _cards(cds, IMAGING, _sign([ct, mr, plain], _prefetch(allergies=allergy)))
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert len(critical) == 1 and critical[0]["source"]["topic"]["code"] == "contrast-allergy"
    assert critical[0]["suggestions"][0]["actions"][0]["resource"]["id"] == "d1"


def test_duplicate_imaging_links_the_prior_study_in_the_smart_app_and_offers_removal(
    cds: Harness,
) -> None:
    study = ex.imaging_study("s1", "p1", ex.days_ago(NOW, 10))
    uid = study["identifier"][0]["value"].removeprefix("urn:oid:")
    body = _sign(
        [ex.service_request("d1", "p1", ex.CT_CHEST_PLAIN)], _prefetch(studies=ex.bundle([study]))
    )
    c = _by_kind(_cards(cds, IMAGING, body))["duplicate-imaging"]
    assert c["indicator"] == "warning"
    (link,) = c["links"]
    assert link["type"] == "smart" and link["url"].startswith("http://testserver/smart/launch")
    assert uid in link["url"]
    context = json.loads(link["appContext"])
    assert context["studyInstanceUid"] == uid and context["imagingStudy"] == "ImagingStudy/s1"
    (action,) = c["suggestions"][0]["actions"]
    assert action == {
        "type": "delete",
        "description": "Delete ServiceRequest/d1",
        "resourceId": "ServiceRequest/d1",
    }


def test_an_older_study_outside_the_window_is_no_duplicate(make_app, keys) -> None:
    app = make_app(cds_duplicate_window_days=5, cds_smart_app_url="https://app.example.org/launch")
    study = ex.imaging_study("s1", "p1", ex.days_ago(NOW, 10))
    with TestClient(app) as http:
        body = _sign(
            [ex.service_request("d1", "p1", ex.CT_CHEST_PLAIN)],
            _prefetch(studies=ex.bundle([study])),
        )
        assert Harness(http, keys.ec).call(IMAGING, body).json()["cards"] == []


def test_lab_retest_too_soon_shows_the_last_result_and_offers_removal(cds: Harness) -> None:
    last = ex.observation("h1", "p1", ex.HBA1C, 7.4, "%", ex.days_ago(NOW, 10))
    prefetch = {"results": ex.bundle([last]), "pending": ex.bundle([])}
    for hook in ("order-select", "order-sign"):
        body = ex.order_request(
            hook, "p1", [ex.service_request("lab1", "p1", ex.HBA1C)], prefetch=prefetch
        )
        (c,) = _cards(cds, LAB, body)
        assert c["indicator"] == "info" and "7.4" in c["summary"]
        assert ex.days_ago(NOW, 10).date().isoformat() in c["detail"]
        assert c["suggestions"][0]["actions"][0] == {
            "type": "delete",
            "description": "Delete ServiceRequest/lab1",
            "resourceId": "ServiceRequest/lab1",
        }
    old = ex.observation("h1", "p1", ex.HBA1C, 7.4, "%", ex.days_ago(NOW, 200))
    body = _sign(
        [ex.service_request("lab1", "p1", ex.HBA1C)],
        {"results": ex.bundle([old]), "pending": ex.bundle([])},
    )
    assert _cards(cds, LAB, body) == []


def test_lab_pending_order_for_the_same_test_is_flagged(cds: Harness) -> None:
    pending = ex.service_request(
        "o1", "p1", ex.HBA1C, status="active", authored=ex.days_ago(NOW, 3)
    )
    body = _sign(
        [ex.service_request("lab1", "p1", ex.HBA1C)],
        {"results": ex.bundle([]), "pending": ex.bundle([pending])},
    )
    (c,) = _cards(cds, LAB, body)
    assert c["source"]["topic"]["code"] == "retest-pending"


def test_patient_view_summarises_recent_imaging_with_linked_ai_findings(cds: Harness) -> None:
    study = ex.imaging_study("s1", "p1", ex.days_ago(NOW, 30))
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "AI lung nodule analysis"},
        "subject": {"reference": "Patient/p1"},
        "imagingStudy": [{"reference": "ImagingStudy/s1"}],
        "conclusion": "One 6 mm nodule",
    }
    finding = {
        "resourceType": "Observation",
        "id": "f1",
        "status": "final",
        "code": {"text": "Nodule malignancy risk"},
        "subject": {"reference": "Patient/p1"},
        "derivedFrom": [{"reference": "ImagingStudy/s1"}],
        "valueQuantity": {"value": 0.12, "unit": "probability"},
    }
    body = {
        "hook": "patient-view",
        "hookInstance": "0b8f9a3e-3f0a-4b8e-9a43-6d3c7c3b1a11",
        "context": {"userId": "Practitioner/example", "patientId": "p1"},
        "prefetch": {
            "studies": ex.bundle([study]),
            "reports": ex.bundle([report]),
            "findings": ex.bundle([finding]),
        },
    }
    (c,) = _cards(cds, SUMMARY, body)
    assert c["indicator"] == "info" and "2 linked findings" in c["summary"]
    assert "One 6 mm nodule" in c["detail"] and "0.12" in c["detail"]
    assert (
        c["links"][0]["type"] == "smart"
        and json.loads(c["links"][0]["appContext"])["patient"] == "p1"
    )
    body["prefetch"]["studies"] = ex.bundle([])
    assert _cards(cds, SUMMARY, body) == []


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_fallback_fetch_from_the_running_facade(
    make_app, keys, database_url: str, put, hook: str
) -> None:
    """No prefetch at all: every key is fetched in process from the facade (SQLite, PostgreSQL)."""
    app = make_app(database_url=database_url)
    with TestClient(app) as http:
        put(
            http,
            ex.patient("p1"),
            ex.egfr("e1", "p1", 22, ex.days_ago(NOW, 2)),
            ex.contrast_allergy("a1", "p1"),
            ex.metformin("m1", "p1"),
            ex.imaging_study("s1", "p1", ex.days_ago(NOW, 7)),
            ex.observation("h1", "p1", ex.HBA1C, 6.9, "%", ex.days_ago(NOW, 14)),
        )
        cds = Harness(http, keys.ec)
        drafts = [
            ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST),
            ex.service_request("lab1", "p1", ex.HBA1C),
        ]
        kinds = set(_by_kind(_cards(cds, IMAGING, ex.order_request(hook, "p1", drafts))))
        assert kinds == {"egfr-below-30", "hold-metformin", "contrast-allergy", "duplicate-imaging"}
        assert set(_by_kind(_cards(cds, LAB, ex.order_request(hook, "p1", drafts)))) == {
            "retest-too-soon"
        }


def test_card_contributors_plug_into_a_service(cds_app, keys) -> None:
    """How the AI cards will arrive: a contributor with its own prefetch, isolated from failures."""
    registry = cds_app.state.cds.registry

    def ai(request, data):
        reports = data.resources("aiReports", "DiagnosticReport")
        return [
            card(
                summary=f"AI: {len(reports)} report(s)",
                indicator="info",
                source=Source("Model v1"),
                kind="ai-test",
            )
        ]

    def broken(request, data):
        raise RuntimeError("model not loaded")

    registry.add_contributor(
        SUMMARY,
        CardContributor("ai", ai, {"aiReports": "DiagnosticReport?patient={{context.patientId}}"}),
    )
    registry.add_contributor(SUMMARY, CardContributor("broken", broken))
    with TestClient(cds_app) as http:
        cds = Harness(http, keys.ec)
        entry = next(s for s in cds.get("/cds-services").json()["services"] if s["id"] == SUMMARY)
        assert "aiReports" in entry["prefetch"]
        body = {
            "hook": "patient-view",
            "hookInstance": "1b8f9a3e-3f0a-4b8e-9a43-6d3c7c3b1a11",
            "context": {"userId": "Practitioner/example", "patientId": "p1"},
            "prefetch": {"studies": ex.bundle([ex.imaging_study("s1", "p1", ex.days_ago(NOW, 3))])},
        }
        kinds = [c["source"]["topic"]["code"] for c in _cards(cds, SUMMARY, body)]
        assert kinds == ["imaging-summary", "ai-test"]
