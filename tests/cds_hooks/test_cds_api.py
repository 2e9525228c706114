"""The service endpoint: routing by (id, hook), request validation, errors, CORS, audit.

Official request examples are accepted as they are, defects included (docs §2.5: R4-invalid
NutritionOrder and MedicationRequest in the Library examples, non-FHIR ids with U+2011 in the
3.0 ballot example); unknown members are ignored everywhere.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from cds_hooks import examples as ex
from cds_hooks.services import imaging_order_safety
from tests.cds_hooks.conftest import Harness

IMAGING = "imaging-order-safety"


def _wrap(spec_context: dict[str, Any], hook: str) -> dict[str, Any]:
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), **spec_context}


def test_discovery_answers_at_exactly_cds_services(cds: Harness) -> None:
    resp = cds.get("/cds-services")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert not resp.history  # no redirect to /cds-services/


@pytest.mark.parametrize(
    ("service", "name", "hook"),
    [
        ("patient-imaging-summary", "patient-view-request.cds-hooks-2.0.1.json", None),
        (IMAGING, "order-sign-request-paginated-prefetch.cds-hooks-3.0.0-ballot.json", None),
        (
            "lab-order-stewardship",
            "order-sign-request-paginated-prefetch.cds-hooks-3.0.0-ballot.json",
            None,
        ),
        (IMAGING, "order-sign-context-labelled-r4.cds-hooks-library-1.0.1.json", "order-sign"),
        (IMAGING, "order-select-context-labelled-r4.cds-hooks-library-1.0.1.json", "order-select"),
        (
            "lab-order-stewardship",
            "order-select-context-labelled-r4.cds-hooks-library-1.0.1.json",
            "order-select",
        ),
    ],
)
def test_official_request_examples_are_accepted(
    cds: Harness, spec, service: str, name: str, hook: str | None
) -> None:
    body = spec(name)
    if hook:
        body = _wrap(body, hook)
    resp = cds.call(service, body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"cards": []}  # no CT/MR or lab drafts there, and no guidance is []


def test_unknown_members_are_ignored(cds: Harness, spec) -> None:
    body = spec("patient-view-request.cds-hooks-2.0.1.json")
    body["extension"] = {"org.example.flag": True}
    body["somethingNew"] = [1, 2]
    body["context"]["futureField"] = {"x": 1}
    body["fhirAuthorization"]["extra"] = "y"
    assert cds.call("patient-imaging-summary", body).status_code == 200


def test_unknown_service_is_404_with_an_operation_outcome(cds: Harness, spec) -> None:
    resp = cds.call("no-such-service", spec("patient-view-request.cds-hooks-2.0.1.json"))
    assert resp.status_code == 404
    assert resp.json()["resourceType"] == "OperationOutcome"


def _order_sign() -> dict[str, Any]:
    return ex.order_request("order-sign", "p1", [ex.service_request("d1", "p1", ex.CT_CHEST_PLAIN)])


BAD_REQUESTS = {
    "wrong hook for the id": lambda b: b.update(hook="patient-view"),
    "hook missing": lambda b: b.pop("hook"),
    "hookInstance missing": lambda b: b.pop("hookInstance"),
    "hookInstance not a UUID": lambda b: b.update(hookInstance="1234"),
    "context missing": lambda b: b.pop("context"),
    "context not an object": lambda b: b.update(context=[1]),
    "patientId missing": lambda b: b["context"].pop("patientId"),
    "patientId not an id": lambda b: b["context"].update(patientId="a b/c"),
    "userId missing": lambda b: b["context"].pop("userId"),
    "userId a Patient on order-sign": lambda b: b["context"].update(userId="Patient/1"),
    "draftOrders missing": lambda b: b["context"].pop("draftOrders"),
    "draftOrders not a Bundle": lambda b: b["context"].update(draftOrders={"entry": []}),
    "fhirServer not a URL": lambda b: b.update(fhirServer="ehr"),
    "fhirAuthorization without fhirServer (cds-r-1)": lambda b: b.update(
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 30,
            "scope": "s",
            "subject": "c",
        }
    ),
    "fhirAuthorization without access_token": lambda b: b.update(
        fhirServer="https://ehr.example.org/fhir",
        fhirAuthorization={"token_type": "Bearer", "expires_in": 30, "scope": "s", "subject": "c"},
    ),
    "token_type not Bearer": lambda b: b.update(
        fhirServer="https://ehr.example.org/fhir",
        fhirAuthorization={
            "access_token": "t",
            "token_type": "MAC",
            "expires_in": 30,
            "scope": "s",
            "subject": "c",
        },
    ),
    "prefetch value a string": lambda b: b.update(prefetch={"patient": "Patient/1"}),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_malformed_requests_get_400_naming_the_problem(cds: Harness, case: str) -> None:
    body = _order_sign()
    BAD_REQUESTS[case](body)
    resp = cds.call(IMAGING, body)
    assert resp.status_code == 400, resp.text
    issue = resp.json()["issue"][0]
    assert issue["severity"] == "error" and issue["diagnostics"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"null", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400(cds: Harness, raw: bytes) -> None:
    path = f"/cds-services/{IMAGING}"
    resp = cds.http.post(path, content=raw, headers=cds.headers(path))
    assert resp.status_code == 400


def test_a_body_over_the_limit_is_413(make_app, keys) -> None:
    from fastapi.testclient import TestClient

    app = make_app(cds_max_body_bytes=2048)
    with TestClient(app) as http:
        body = _order_sign()
        body["padding"] = "x" * 4096
        assert Harness(http, keys.ec).call(IMAGING, body).status_code == 413


def test_cors_preflight_needs_no_jwt_and_responses_carry_cors_headers(cds: Harness) -> None:
    pre = cds.http.options(
        f"/cds-services/{IMAGING}",
        headers={"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    assert "POST" in pre.headers["access-control-allow-methods"]
    path = "/cds-services"
    got = cds.http.get(path, headers={**cds.headers(path), "Origin": "https://ehr.example.org"})
    assert got.headers["access-control-allow-origin"] == "*"


def test_one_draft_that_breaks_a_rule_costs_only_its_own_cards(cds: Harness, monkeypatch) -> None:
    real = imaging_order_safety.orderable_for

    def flaky(resource: Any) -> Any:
        if resource.get("id") == "bad":
            raise RuntimeError("boom")
        return real(resource)

    monkeypatch.setattr(imaging_order_safety, "orderable_for", flaky)
    drafts = [
        ex.service_request("bad", "p1", ex.CT_CHEST_CONTRAST),
        ex.service_request("good", "p1", ex.CT_CHEST_CONTRAST),
    ]
    prefetch = _quiet_prefetch("p1")
    prefetch["allergies"] = ex.bundle([ex.contrast_allergy("a1", "p1")])
    body = ex.order_request("order-sign", "p1", drafts, prefetch=prefetch)
    body["context"]["draftOrders"]["entry"] += [
        42,
        {"resource": "not a resource"},
        {"resource": None},
    ]
    resp = cds.call(IMAGING, body)
    assert resp.status_code == 200
    kinds = {
        (c["source"]["topic"]["code"], "ServiceRequest/bad" in c.get("detail", ""))
        for c in resp.json()["cards"]
    }
    assert ("not-checked", True) in kinds  # the clinician is told the bad one was not checked
    assert ("contrast-allergy", False) in kinds  # the good one still gets its card


def _quiet_prefetch(pid: str) -> dict[str, Any]:
    """A complete prefetch with nothing to warn about (normal eGFR, no allergy, no priors)."""
    return {
        "patient": ex.patient(pid),
        "renal": ex.bundle([ex.egfr("e1", pid, 80, ex.days_ago(ex_now(), 2))]),
        "allergies": ex.bundle([]),
        "medications": ex.bundle([]),
        "studies": ex.bundle([]),
        "orders": ex.bundle([]),
    }


def ex_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_required_data_unobtainable_is_412(make_app, keys) -> None:
    from fastapi.testclient import TestClient

    app = make_app(cds_facade_fallback=False)
    with TestClient(app) as http:
        harness = Harness(http, keys.ec)
        body = _order_sign()
        resp = harness.call(IMAGING, body)
        assert resp.status_code == 412
        outcome = resp.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"][0].startswith("prefetch.")
        body = _order_sign()
        body["prefetch"] = _quiet_prefetch("p1")
        assert harness.call(IMAGING, body).status_code == 200  # all there: no fetch needed


def test_every_call_is_audited_without_the_tokens(cds: Harness) -> None:
    drafts = [ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)]
    body = ex.order_request("order-sign", "p1", drafts, prefetch=_quiet_prefetch("p1"))
    body["prefetch"]["renal"] = ex.bundle([])  # no creatinine: one card
    body["fhirServer"] = "https://not-allow-listed.example/fhir"
    body["fhirAuthorization"] = {
        "access_token": "secret-fhir-token",
        "token_type": "Bearer",
        "expires_in": 30,
        "scope": "user/Observation.read",
        "subject": "cds",
    }
    resp = cds.call(IMAGING, body)
    assert resp.status_code == 200 and resp.json()["cards"]
    cds.call(IMAGING, {**body, "hook": "patient-view"})  # a 400, audited too
    cds.http.app.state.cds.recorder.flush()  # the audit is written after the response
    events = cds.http.get("/fhir/AuditEvent?_count=50").json()["entry"]
    audits = [e["resource"] for e in events]
    ok = [a for a in audits if a["outcome"] == "0"]
    assert (
        len(ok) == 1 and ok[0]["entity"][0]["what"]["identifier"]["value"] == body["hookInstance"]
    )
    assert ok[0]["agent"][0]["who"]["identifier"]["value"] == "https://ehr.example.org/"
    assert {"reference": "Patient/p1"} in [e.get("what") for e in ok[0]["entity"]]
    assert any(a["outcome"] == "4" for a in audits)
    text = json.dumps(audits)
    assert "secret-fhir-token" not in text
    assert not any(token in text for token in cds.sent)
    by_patient = cds.http.get("/fhir/AuditEvent?patient=Patient/p1").json()
    assert by_patient.get("entry")


def test_order_select_judges_only_the_selected_drafts(cds: Harness) -> None:
    drafts = [
        ex.service_request("sel", "p1", ex.CT_CHEST_CONTRAST),
        ex.service_request("other", "p1", ex.CT_CHEST_CONTRAST),
    ]
    prefetch = _quiet_prefetch("p1")
    prefetch["allergies"] = ex.bundle([ex.contrast_allergy("a1", "p1")])
    body = ex.order_request(
        "order-select", "p1", drafts, prefetch=prefetch, selections=["ServiceRequest/sel"]
    )
    cards = cds.call(IMAGING, body).json()["cards"]
    assert len(cards) == 1 and "sel" in cards[0]["suggestions"][0]["actions"][0]["resource"]["id"]
    body = copy.deepcopy(body)
    body["context"].pop("selections")  # tolerated: every draft then counts as selected
    assert len(cds.call(IMAGING, body).json()["cards"]) == 2
