"""The SMART app's pure parts: scope syntax, PKCE, WADO Accept headers, landing views,
suggestion actions on drafts, AI components by code."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from smart_app.dicomweb import wado_accept
from smart_app.imaging import finding_view
from smart_app.launch import view_target
from smart_app.oauth import pkce_pair, v1_scopes
from smart_app.order_drafts import apply_actions


def test_pkce_pair_is_s256() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == digest.decode()
    assert pkce_pair()[0] != verifier


def test_v1_scopes_for_servers_without_v2() -> None:
    assert v1_scopes("launch openid user/Patient.rs patient/Observation.rs api:fhir") == (
        "launch openid user/Patient.read patient/Observation.read api:fhir"
    )


def test_wado_accept_is_always_explicit() -> None:
    base = "/studies/1.2/series/3.4"
    assert "transfer-syntax=1.2.840.10008.1.2.1" in wado_accept(base, None)
    assert "transfer-syntax=1.2.840.10008.1.2.1" in wado_accept(base, "*/*")
    assert 'type="application/octet-stream"' in wado_accept(f"{base}/instances/5/frames/1", None)
    assert wado_accept(f"{base}/metadata", None) == "application/dicom+json"
    assert wado_accept(f"{base}/instances", "*/*") == "application/dicom+json"
    assert wado_accept(f"{base}/instances/5/rendered", None) == "image/png"
    explicit = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert wado_accept(f"{base}/instances/5", explicit) == explicit


def test_view_targets_from_smart_links() -> None:
    ctx = {"view": "imaging", "imagingStudy": "ImagingStudy/ct-1", "series": "1.2.3"}
    assert view_target(ctx) == "/smart/imaging/ct-1?series=1.2.3"
    legacy = {"view": "imaging-study", "imagingStudy": "ImagingStudy/ct-1"}
    assert view_target(legacy) == "/smart/imaging/ct-1"
    assert view_target({"view": "risk"}) == "/smart/risk"
    assert view_target(None) == "/smart/orders"


def test_suggestion_actions_on_drafts() -> None:
    drafts: dict[str, dict[str, Any]] = {
        "a": {"resourceType": "ServiceRequest", "id": "a", "code": {"text": "CT with"}}
    }
    update = {"resourceType": "ServiceRequest", "id": "a", "code": {"text": "CT without"}}
    create = {"resourceType": "ServiceRequest", "code": {"text": "Creatinine"}}
    apply_actions(drafts, [{"type": "update", "resource": update}])
    assert drafts["a"]["code"]["text"] == "CT without" and drafts["a"]["status"] == "draft"
    apply_actions(drafts, [{"type": "create", "resource": create}])
    assert len(drafts) == 2 and any(d["code"]["text"] == "Creatinine" for d in drafts.values())
    apply_actions(drafts, [{"type": "delete", "resourceId": ["ServiceRequest/a"]}])
    assert "a" not in drafts and len(drafts) == 1


def test_finding_components_are_read_by_code_not_position() -> None:
    def comp(code: str, **value: object) -> dict[str, object]:
        return {"code": {"coding": [{"system": "urn:cdss:ai", "code": code}]}, **value}

    obs = {
        "code": {"coding": [{"display": "Nodule of lung"}]},
        "valueCodeableConcept": {"coding": [{"code": "52101004"}]},
        "component": [
            comp("pixel-column", valueInteger=30),
            comp("future-thing", valueString="ignored"),
            comp("probability", valueQuantity={"value": 0.42}),
            comp("pixel-row", valueInteger=40),
            comp("model", valueString="m@2"),
        ],
    }
    view = finding_view(obs)
    assert view["label"] == "Nodule of lung" and view["present"] == "true"
    assert (view["probability"], view["row"], view["col"], view["model"]) == (0.42, 40, 30, "m@2")
    assert view["sop"] is None
