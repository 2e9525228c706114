"""Conformance: the official examples against our validators, our responses against the spec.

The invariants are run twice: as the spec's own FHIRPath expressions (fhirpathpy, when installed;
cds_hooks.conformance.INVARIANTS quotes them from HL7/cds-hooks input/fsh/invariants) and as the
equivalent Python checks of cds_hooks.conformance, which every response of the services passes.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_hooks import examples as ex
from cds_hooks.conformance import INVARIANTS, check_discovery, check_feedback, check_response
from tests.cds_hooks.conftest import Harness

NOW = datetime.now(UTC)


def _at(payload: Any, path: str) -> list[Any]:
    """The items a context path such as cards.suggestions.actions names (lists flattened)."""
    items = [payload]
    for part in [p for p in path.split(".") if p]:
        nxt: list[Any] = []
        for item in items:
            value = item.get(part) if isinstance(item, dict) else None
            nxt += value if isinstance(value, list) else ([value] if value is not None else [])
        items = nxt
    return items


def fhirpath_violations(payload: Any, ids: list[str]) -> list[str]:
    fhirpathpy = pytest.importorskip("fhirpathpy")
    out = []
    for inv in ids:
        path, expression = INVARIANTS[inv]
        for item in _at(payload, path):
            if fhirpathpy.evaluate(item, expression, {}) != [True]:
                out.append(inv)
    return out


RESPONSE_INVARIANTS = [f"cds-resp-{i}" for i in range(1, 8)]
FEEDBACK_INVARIANTS = ["cds-fb-1", "cds-fb-2", "cds-fb-3"]


@pytest.mark.parametrize(
    "name",
    [
        "feedback-accepted.cds-hooks-2.0.1.json",
        "feedback-overridden.cds-hooks-2.0.1.json",
        "feedback-overridden-with-reason.cds-hooks-2.0.1.json",
    ],
)
def test_official_feedback_examples_pass_both_validators(spec, name: str) -> None:
    body = spec(name)
    assert check_feedback(body) == []
    assert fhirpath_violations(body, FEEDBACK_INVARIANTS) == []


def test_official_card_response_passes_both_validators(spec) -> None:
    body = spec("card-response.cds-hooks-2.0.1.json")
    assert check_response(body) == []
    assert fhirpath_violations(body, RESPONSE_INVARIANTS) == []


def test_official_autolaunchable_example_lacks_the_required_indicator(spec) -> None:
    """A defect of the 2.0.1 example (card.indicator is REQUIRED); our validator says exactly it."""
    body = spec("card-response-autolaunchable.cds-hooks-2.0.1.json")
    assert check_response(body) == [
        "cards[0].indicator must be info, warning or critical (#card-attributes)"
    ]
    assert fhirpath_violations(body, RESPONSE_INVARIANTS) == []


def test_official_discovery_example_passes(spec) -> None:
    assert check_discovery(spec("discovery-response.cds-hooks-2.0.1.json")) == []


@pytest.mark.parametrize(
    ("mutate", "invariant"),
    [
        (
            lambda c: c.update(
                selectionBehavior="at-most-one",
                suggestions=[
                    {"label": "a", "isRecommended": True},
                    {"label": "b", "isRecommended": True},
                ],
            ),
            "cds-resp-1",
        ),
        (
            lambda c: c.update(
                selectionBehavior="any",
                suggestions=[
                    {
                        "label": "a",
                        "actions": [
                            {
                                "type": "delete",
                                "description": "d",
                                "resource": {"resourceType": "X"},
                            }
                        ],
                    }
                ],
            ),
            "cds-resp-2",
        ),
        (
            lambda c: c.update(
                links=[
                    {
                        "label": "l",
                        "url": "https://x.example",
                        "type": "absolute",
                        "appContext": "x",
                    }
                ]
            ),
            "cds-resp-3",
        ),
        (lambda c: c.update(overrideReasons=[{"system": "s", "code": "c"}]), "cds-resp-4"),
        (
            lambda c: c.update(
                selectionBehavior="any",
                suggestions=[
                    {
                        "label": "a",
                        "actions": [{"type": "create", "resource": {"resourceType": "X"}}],
                    }
                ],
            ),
            "cds-resp-5",
        ),
        (lambda c: c.update(suggestions=[{"label": "a"}]), "cds-resp-6"),
        (
            lambda c: c.update(
                selectionBehavior="any",
                suggestions=[{"label": "a", "actionSelectionBehavior": "some"}],
            ),
            "cds-resp-7",
        ),
    ],
)
def test_each_response_invariant_is_caught_by_both_validators(spec, mutate, invariant: str) -> None:
    body = copy.deepcopy(spec("card-response.cds-hooks-2.0.1.json"))
    mutate(body["cards"][0])
    assert any(invariant in p for p in check_response(body)), check_response(body)
    assert invariant in fhirpath_violations(body, [invariant])


@pytest.mark.parametrize(
    ("item", "invariant"),
    [
        (
            {"card": "c", "outcome": "ignored", "outcomeTimestamp": "2021-12-11T10:05:31Z"},
            "cds-fb-1",
        ),
        (
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2021-12-11T10:05:31Z"},
            "cds-fb-2",
        ),
        (
            {
                "card": "c",
                "outcome": "overridden",
                "overrideReason": {"x": 1},
                "outcomeTimestamp": "2021-12-11T10:05:31Z",
            },
            "cds-fb-3",
        ),
    ],
)
def test_each_feedback_invariant_is_caught_by_both_validators(item, invariant: str) -> None:
    body = {"feedback": [item]}
    assert any(invariant in p for p in check_feedback(body))
    assert invariant in fhirpath_violations(body, [invariant])


def test_request_invariant_cds_r_1_is_enforced(spec, cds: Harness) -> None:
    body = spec("patient-view-request.cds-hooks-2.0.1.json")
    assert fhirpath_violations(body, ["cds-r-1"]) == []
    del body["fhirServer"]
    assert fhirpath_violations(body, ["cds-r-1"]) == ["cds-r-1"]
    resp = cds.call("patient-imaging-summary", body)
    assert resp.status_code == 400 and "cds-r-1" in resp.text


def test_our_discovery_passes_and_never_tokenises_draft_orders(cds: Harness) -> None:
    body = cds.get("/cds-services").json()
    assert check_discovery(body) == []
    pairs = {(s["id"], s["hook"]) for s in body["services"]}
    assert ("imaging-order-safety", "order-select") in pairs
    assert ("imaging-order-safety", "order-sign") in pairs  # one id, several hooks
    assert ("patient-imaging-summary", "patient-view") in pairs


def _everything(pid: str) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Drafts and prefetch that make every card kind of the order services appear."""
    drafts = [
        ex.service_request("d-ct", pid, ex.CT_CHEST_CONTRAST),
        ex.service_request("d-a1c", pid, ex.HBA1C),
    ]
    imaging = {
        "patient": ex.patient(pid),
        "renal": ex.bundle([ex.egfr("e1", pid, 22, ex.days_ago(NOW, 3))]),
        "allergies": ex.bundle([ex.contrast_allergy("a1", pid)]),
        "medications": ex.bundle([ex.metformin("m1", pid)]),
        "studies": ex.bundle([ex.imaging_study("s1", pid, ex.days_ago(NOW, 5))]),
        "orders": ex.bundle([]),
    }
    a1c = ex.observation("h1", pid, ex.HBA1C, 7.1, "%", ex.days_ago(NOW, 20))
    lab = {"results": ex.bundle([a1c]), "pending": ex.bundle([])}
    return drafts, imaging, lab


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_every_card_our_services_send_passes_the_validators(cds: Harness, hook: str) -> None:
    drafts, imaging, lab = _everything("p1")
    for service, prefetch in (("imaging-order-safety", imaging), ("lab-order-stewardship", lab)):
        body = cds.call(service, ex.order_request(hook, "p1", drafts, prefetch=prefetch)).json()
        assert body["cards"], service
        assert check_response(body, require_uuid=True) == []
        assert fhirpath_violations(body, RESPONSE_INVARIANTS) == []
