"""The patient's record is read once per call, however many draft orders the call judges: the
eGFR search, each prior study and order, each allergy, each lab result's date. What each draft
gets is unchanged (the clinical rules' own tests, and the services' tests, say what that is)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_hooks import examples as ex
from cds_hooks.clinical import contrast, contrast_allergy, duplicates, retest
from cds_hooks.registry import HookData, ServiceOptions
from cds_hooks.request import parse_request
from cds_hooks.services import imaging_order_safety, lab_order_stewardship

NOW = datetime.now(UTC)
HBA1C = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")


def _count(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, calls: Counter[str]) -> None:
    original: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def _data(body: dict[str, Any]) -> tuple[Any, HookData]:
    request = parse_request(body)
    data = HookData(
        prefetch=request.prefetch,
        now=NOW,
        options=ServiceOptions("https://cdss.example/smart/launch"),
        patient_id=request.patient_id,
    )
    return request, data


def test_imaging_order_safety_reads_the_record_once_for_all_drafts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: Counter[str] = Counter()
    _count(monkeypatch, contrast, "latest_egfr", calls)
    _count(monkeypatch, duplicates, "_study_prior", calls)
    _count(monkeypatch, duplicates, "_order_prior", calls)
    _count(monkeypatch, contrast_allergy, "substance_classes", calls)
    studies = [
        ex.imaging_study(f"st{i}", "p1", ex.days_ago(NOW, 5 + i), modality=m, description=d)
        for i, (m, d) in enumerate(
            [("CT", "CT Chest"), ("CT", "CT Abdomen Pelvis"), ("MR", "MR Brain"), ("CT", "CT Head")]
        )
    ]
    orders = [
        ex.service_request("o1", "p1", ex.CT_CHEST_PLAIN, status="completed", authored=NOW),
        ex.service_request("d2", "p1", ex.MR_BRAIN_CONTRAST, status="active", authored=NOW),
    ]
    prefetch = {
        "patient": ex.patient("p1"),
        "renal": ex.bundle([ex.egfr(f"e{i}", "p1", 25 + i, ex.days_ago(NOW, i)) for i in range(9)]),
        "allergies": ex.bundle([ex.contrast_allergy("a1", "p1"), ex.contrast_allergy("a2", "p1")]),
        "medications": ex.bundle([ex.metformin("m1", "p1")]),
        "studies": ex.bundle(studies),
        "orders": ex.bundle(orders),
    }
    drafts = [
        ex.service_request("d1", "p1", ex.CT_CHEST_CONTRAST),
        ex.service_request("d2", "p1", ex.MR_BRAIN_CONTRAST),  # also listed among the orders
        ex.service_request("d3", "p1", ("36813-4", "CT Abdomen and Pelvis W contrast IV")),
    ]
    request, data = _data(ex.order_request("order-sign", "p1", drafts, prefetch=prefetch))
    cards = imaging_order_safety.evaluate(request, data)
    by_order = Counter((c.order, c.kind) for c in cards)
    for order in ("ServiceRequest/d1", "ServiceRequest/d2", "ServiceRequest/d3"):
        assert by_order[(order, "egfr-below-30")] == 1
        assert by_order[(order, "duplicate-imaging")] == 1
    # d2 is not a duplicate of itself: its only prior is the MR brain study
    (dup,) = [c for c in cards if c.order == "ServiceRequest/d2" and c.kind == "duplicate-imaging"]
    assert "ImagingStudy/st2" in (dup.detail or "") and "more prior" not in (dup.detail or "")
    # each part of the record was read once, not once per draft
    assert calls == {
        "latest_egfr": 1,
        "_study_prior": len(studies),
        "_order_prior": len(orders),
        "substance_classes": 2,
    }


def test_lab_order_stewardship_dates_each_result_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    _count(monkeypatch, retest, "effective_time", calls)
    _count(monkeypatch, retest, "request_time", calls)
    results = [
        ex.observation(f"r{i}", "p1", HBA1C, 6.5, "%", ex.days_ago(NOW, 20 + i)) for i in range(6)
    ]
    pending = [ex.service_request("p-1", "p1", HBA1C, status="active", authored=NOW)]
    prefetch = {"results": ex.bundle(results), "pending": ex.bundle(pending)}
    drafts = [ex.service_request(f"d{i}", "p1", HBA1C) for i in range(3)]
    request, data = _data(ex.order_request("order-sign", "p1", drafts, prefetch=prefetch))
    cards = lab_order_stewardship.evaluate(request, data)
    assert [c.kind for c in cards] == ["retest-too-soon"] * 3
    assert calls == {"effective_time": len(results)}  # the result settles it: no pending read
