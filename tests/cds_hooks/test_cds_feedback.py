"""Feedback (#feedback): validated (cds-fb-1..3), stored once however often it is repeated,
audited, and reported per service, card kind and override reason by `cdss feedback report`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds_hooks import examples as ex
from cdss.cli import app as cli
from tests.cds_hooks.conftest import Harness

IMAGING = "imaging-order-safety"
FEEDBACK = f"/cds-services/{IMAGING}/feedback"
NOW = datetime.now(UTC)


def _issue_cards(cds: Harness) -> list[dict[str, Any]]:
    """Two cards: eGFR < 30 (with a suggestion) and contrast allergy (critical)."""
    prefetch = {
        "patient": ex.patient("p1"),
        "renal": ex.bundle([ex.egfr("e1", "p1", 20, NOW)]),
        "allergies": ex.bundle([ex.contrast_allergy("a1", "p1")]),
        "medications": ex.bundle([]),
        "studies": ex.bundle([]),
        "orders": ex.bundle([]),
    }
    drafts = [ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST)]
    return cds.call(
        IMAGING, ex.order_request("order-sign", "p1", drafts, prefetch=prefetch)
    ).json()["cards"]


def _kind(card: dict[str, Any]) -> str:
    return card["source"]["topic"]["code"]


@pytest.mark.parametrize(
    "name",
    [
        "feedback-accepted.cds-hooks-2.0.1.json",
        "feedback-overridden.cds-hooks-2.0.1.json",
        "feedback-overridden-with-reason.cds-hooks-2.0.1.json",
    ],
)
def test_official_feedback_examples_are_accepted(cds: Harness, spec, name: str) -> None:
    resp = cds.post(FEEDBACK, spec(name))
    assert resp.status_code == 200 and resp.json() == {"received": 1, "new": 1}


def test_feedback_is_stored_once_audited_and_reported(
    make_app, keys, database_url: str, monkeypatch
) -> None:
    app = make_app(database_url=database_url)
    with TestClient(app) as http:
        cds = Harness(http, keys.ec)
        cards = {_kind(c): c for c in _issue_cards(cds)}
        renal, allergy = cards["egfr-below-30"], cards["contrast-allergy"]
        batch = {
            "feedback": [
                {
                    "card": renal["uuid"],
                    "outcome": "accepted",
                    "acceptedSuggestions": [{"id": renal["suggestions"][0]["uuid"]}],
                    "outcomeTimestamp": "2026-11-29T10:05:31Z",
                },
                {
                    "card": allergy["uuid"],
                    "outcome": "overridden",
                    "overrideReason": {
                        "reason": renal["overrideReasons"][1],
                        "userComment": "premedicated",
                    },
                    "outcomeTimestamp": "2026-11-29T10:06:00Z",
                },
            ]
        }
        assert cds.post(FEEDBACK, batch).json() == {"received": 2, "new": 2}
        assert cds.post(FEEDBACK, batch).json() == {"received": 2, "new": 0}  # repeated: no-op
        app.state.cds.recorder.flush()
        audits = [e["resource"] for e in http.get("/fhir/AuditEvent?_count=100").json()["entry"]]
        fb = [a for a in audits if a["subtype"][0]["code"] == "cds-feedback"]
        assert len(fb) == 2 and all(a["outcome"] == "0" for a in fb)
    monkeypatch.setenv("CDSS_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["feedback", "report", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["kind"]: r for r in json.loads(result.stdout)}
    assert rows["egfr-below-30"]["accept_rate"] == 1.0 and rows["egfr-below-30"]["issued"] == 1
    assert rows["contrast-allergy"]["override_rate"] == 1.0
    assert rows["contrast-allergy"]["override_reasons"] == {
        "Clinical benefit outweighs the risk (benefit-outweighs-risk)": 1
    }
    table = CliRunner().invoke(cli, ["feedback", "report"])
    assert "imaging-order-safety" in table.output and "override reason" in table.output


def test_the_latest_feedback_of_a_card_is_the_one_reported(cds: Harness, cds_app) -> None:
    from cds_hooks.report import feedback_report

    (renal, *_rest) = [c for c in _issue_cards(cds) if _kind(c) == "egfr-below-30"]
    first = {
        "card": renal["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-29T10:00:00Z",
    }
    then = {
        "card": renal["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": renal["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-29T10:01:00+00:00",
    }
    assert cds.post(FEEDBACK, {"feedback": [then, first]}).status_code == 200
    stats = {s.kind: s for s in feedback_report(cds_app.state.cds.feedback.engine)}
    assert (stats["egfr-below-30"].accepted, stats["egfr-below-30"].overridden) == (1, 0)


BAD = {
    "no feedback array": {},
    "empty feedback array": {"feedback": []},
    "no card": {
        "feedback": [{"outcome": "overridden", "outcomeTimestamp": "2026-11-29T10:00:00Z"}]
    },
    "outcome not allowed (cds-fb-1)": {
        "feedback": [
            {"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-29T10:00:00Z"}
        ]
    },
    "accepted without suggestions (cds-fb-2)": {
        "feedback": [
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-29T10:00:00Z"}
        ]
    },
    "empty overrideReason (cds-fb-3)": {
        "feedback": [
            {
                "card": "c",
                "outcome": "overridden",
                "overrideReason": {},
                "outcomeTimestamp": "2026-11-29T10:00:00Z",
            }
        ]
    },
    "reason Coding without system": {
        "feedback": [
            {
                "card": "c",
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "x"}},
                "outcomeTimestamp": "2026-11-29T10:00:00Z",
            }
        ]
    },
    "no timestamp": {"feedback": [{"card": "c", "outcome": "overridden"}]},
    "timestamp without zone": {
        "feedback": [
            {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-29T10:00:00"}
        ]
    },
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_feedback_is_400(cds: Harness, case: str) -> None:
    resp = cds.post(FEEDBACK, BAD[case])
    assert resp.status_code == 400, resp.text
    assert resp.json()["resourceType"] == "OperationOutcome"


def test_accepting_a_suggestion_the_card_never_had_is_400(cds: Harness) -> None:
    renal = next(c for c in _issue_cards(cds) if _kind(c) == "egfr-below-30")
    body = {
        "feedback": [
            {
                "card": renal["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "not-a-suggestion-of-this-card"}],
                "outcomeTimestamp": "2026-11-29T10:00:00Z",
            }
        ]
    }
    assert cds.post(FEEDBACK, body).status_code == 400


def test_feedback_needs_a_jwt_for_the_feedback_url_and_a_known_service(cds: Harness, spec) -> None:
    body = spec("feedback-overridden.cds-hooks-2.0.1.json")
    assert cds.http.post(FEEDBACK, json=body).status_code == 401
    assert cds.post("/cds-services/nope/feedback", body).status_code == 404
