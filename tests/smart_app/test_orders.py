"""Order entry over HTTP: a contrast CT for a patient with eGFR 24 fires order-select at the CDS
service with a signed JWT and gets the ACR-NKF warning; accepting its suggestion swaps the draft
for the non-contrast study and sends feedback; signing fires order-sign and posts the order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from fhir_facade.orders import outbox
from fhir_facade.search.query import parse_search
from tests.smart_app.flow import Launched, launch
from tests.smart_app.stack import SmartStack

CT_WITH = "http://loinc.org|24628-0"
CT_WITHOUT = "http://loinc.org|29252-4"
FEEDBACK = "urn:cdss:codesystem:cds-hooks-event|cds-feedback"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def _post(http: httpx.Client, stack: SmartStack, s: Launched, path: str, body: Any) -> Any:
    answer = http.post(f"{stack.app_base}/smart/api/orders/{path}", json=body, headers=s.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _feedback_events(stack: SmartStack) -> int:
    query = parse_search("AuditEvent", [("subtype", FEEDBACK)])
    query.count = 1000
    with stack.store.read_unit() as unit:
        return len(unit.search(query).matches)


def test_low_egfr_contrast_ct_warns_and_the_suggestion_changes_the_order(
    stack: SmartStack, http: httpx.Client
) -> None:
    s = launch(http, stack.launch_url(stack.a.id))
    page = http.get(f"{stack.app_base}/smart/orders", headers=s.headers)
    assert page.status_code == 200 and "CT Chest W contrast IV" in page.text
    state = _post(http, stack, s, "select", {"key": CT_WITH, "checked": True})
    assert [d["key"] for d in state["drafts"]] == [CT_WITH]
    (card,) = [c for c in state["cards"] if "eGFR 24" in c["summary"]]
    assert card["indicator"] == "warning" and "ACR" in card["source"]["label"]
    (suggestion,) = card["suggestions"]
    before = _feedback_events(stack)
    state = _post(
        http, stack, s, "accept", {"card": card["uuid"], "suggestion": suggestion["uuid"]}
    )
    assert [d["key"] for d in state["drafts"]] == [CT_WITHOUT]
    deadline = time.monotonic() + 10  # the CDS recorder writes feedback audits in batches
    while _feedback_events(stack) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _feedback_events(stack) == before + 1
    state = _post(http, stack, s, "sign", {"confirm": False})
    if state.get("review"):  # order-sign had something to say: sign anyway
        state = _post(http, stack, s, "sign", {"confirm": True})
    (signed,) = state["signed"]
    assert signed["text"] == "CT Chest WO contrast" and signed["status"] == "active"
    assert state["drafts"] == []
    # routed: the order intake queued it for the modality worklist, under an accession number
    engine = create_engine(stack.store_url)
    with engine.connect() as conn:
        row = outbox.get(conn, signed["id"])
    engine.dispose()
    assert row is not None and row.target == "imaging" and row.state == "queued"


def test_a_forged_suggestion_is_refused(stack: SmartStack, http: httpx.Client) -> None:
    s = launch(http, stack.launch_url(stack.a.id))
    answer = http.post(
        f"{stack.app_base}/smart/api/orders/accept",
        json={"card": "not-a-card", "suggestion": "x"},
        headers=s.headers,
    )
    assert answer.status_code == 400 and "no longer on offer" in answer.text


def test_patient_with_normal_egfr_gets_no_renal_warning(
    stack: SmartStack, http: httpx.Client
) -> None:
    s = launch(http, stack.launch_url(stack.b.id))
    state = _post(http, stack, s, "select", {"key": CT_WITH, "checked": True})
    assert not [c for c in state["cards"] if "eGFR" in c["summary"]]


def test_override_needs_one_of_the_cards_reasons_and_sends_feedback(
    stack: SmartStack, http: httpx.Client
) -> None:
    s = launch(http, stack.launch_url(stack.a.id))
    state = _post(http, stack, s, "select", {"key": CT_WITH, "checked": True})
    (card,) = [c for c in state["cards"] if "eGFR 24" in c["summary"]]
    refused = http.post(
        f"{stack.app_base}/smart/api/orders/override",
        json={"card": card["uuid"], "reason": "because-i-say-so"},
        headers=s.headers,
    )
    assert refused.status_code == 400 and "override reasons" in refused.text
    reason = card["overrideReasons"][0]["code"]
    before = _feedback_events(stack)
    state = _post(http, stack, s, "override", {"card": card["uuid"], "reason": reason})
    assert card["uuid"] not in [c["uuid"] for c in state["cards"]]
    assert [d["key"] for d in state["drafts"]] == [CT_WITH]  # the order stays as chosen
    deadline = time.monotonic() + 10
    while _feedback_events(stack) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _feedback_events(stack) == before + 1
