"""retest_too_soon: RCPath/ACB/IBMS G147 minimum retest intervals (clinical-reference §6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from cds_hooks.clinical.retest import SOURCE_URL, intervals, retest_too_soon

NOW = datetime.fromisoformat("2025-06-01T12:00:00+00:00")
LOINC = "http://loinc.org"


def draft(code: str, system: str = LOINC) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "draft",
        "status": "draft",
        "code": {"coding": [{"system": system, "code": code}]},
    }


def result(
    code: str,
    value: float,
    unit: str,
    taken: datetime,
    *,
    status: str = "final",
    ref: tuple[float, float] | None = None,
    interpretation: str | None = None,
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "r1",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": taken.isoformat(),
        "valueQuantity": {"value": value, "unit": unit},
    }
    if ref:
        obs["referenceRange"] = [{"low": {"value": ref[0]}, "high": {"value": ref[1]}}]
    if interpretation:
        obs["interpretation"] = [{"coding": [{"code": interpretation}]}]
    return obs


def pending(
    code: str, authored: datetime, *, status: str = "active", oid: str = "sr9"
) -> dict[str, Any]:
    return {**draft(code), "id": oid, "status": status, "authoredOn": authored.isoformat()}


def check(code: str, observations: Sequence[Any] = (), orders: Sequence[Any] = ()) -> Any:
    return retest_too_soon(
        service_request=draft(code),
        observations=list(observations),
        pending_orders=list(orders),
        now=NOW,
    )


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


@pytest.mark.parametrize(
    ("drafted", "resulted", "taken", "flagged"),
    [
        ("4548-4", "4548-4", ago(days=30), True),  # HbA1c: 2 months (B-E19)
        ("4548-4", "59261-8", ago(days=30), True),  # same test in mmol/mol
        ("59261-8", "4548-4", ago(days=30), True),
        (
            "4548-4",
            "4548-4",
            datetime.fromisoformat("2025-04-01T12:00:00+00:00"),
            True,
        ),  # exactly 2 months
        ("4548-4", "4548-4", datetime.fromisoformat("2025-03-31T12:00:00+00:00"), False),
        ("1988-5", "1988-5", ago(hours=12), True),  # CRP: 24 h (B-SP7)
        ("1988-5", "1988-5", ago(hours=25), False),
        ("3016-3", "3016-3", ago(days=40), True),  # TSH: 2 months (B-E5)
        ("3016-3", "3016-3", ago(days=70), False),
        ("2093-3", "2093-3", ago(days=60), True),  # lipids: 3 months (B-LP3)
        ("2093-3", "2085-9", ago(days=60), False),  # HDL is another test
        ("1742-6", "1742-6", ago(hours=48), True),  # ALT: 72 h (B-L2)
        ("1742-6", "1742-6", ago(hours=80), False),
        ("24108-3", "24108-3", ago(days=20), True),  # CA 19-9: 1 month (B-TM6)
    ],
)
def test_result_inside_interval(
    drafted: str, resulted: str, taken: datetime, flagged: bool
) -> None:
    f = check(drafted, [result(resulted, 7.1, "%", taken)])
    assert bool(f) is flagged
    if f:
        assert (f.kind, f.severity, f.loinc) == ("retest-too-soon", "info", drafted)
        assert f.last_result.value == 7.1 and f.last_result.unit == "%"
        assert (
            f.last_result.date == taken.isoformat() and f.last_result.reference == "Observation/r1"
        )
        rule = intervals()[drafted]
        assert rule.ref in f.citation and "G147" in f.citation and f.source_url == SOURCE_URL
        assert f.interval == rule.text and f.citation in f.detail


def test_summary_carries_value_date_and_interval() -> None:
    f = check("4548-4", [result("4548-4", 7.1, "%", ago(days=21))])
    assert (
        f.summary
        == "Hemoglobin A1c resulted 21 days ago (7.1 %); G147 minimum retest interval 2 months"
    )
    assert "B-E18" in f.detail  # the diagnostic exception G147 itself makes


@pytest.mark.parametrize(
    ("observation", "flagged"),
    [
        (result("2276-4", 80, "ug/L", ago(days=100), ref=(30, 400)), True),  # normal -> 1 year
        (result("2276-4", 900, "ug/L", ago(days=100), ref=(30, 400)), False),  # abnormal: B-G9 n/a
        (result("2276-4", 80, "ug/L", ago(days=100), interpretation="N"), True),
        (result("2276-4", 80, "ug/L", ago(days=100), interpretation="H"), False),
        (result("2276-4", 80, "ug/L", ago(days=100)), False),  # normality unknown: no flag
        (
            {
                **result("2276-4", 80, "ug/L", ago(days=100)),
                "referenceRange": [{"low": {"value": "x"}}],
            },
            False,
        ),
        (result("2276-4", 80, "ug/L", ago(days=400), ref=(30, 400)), False),
    ],
)
def test_ferritin_only_after_a_normal_result(observation: dict[str, Any], flagged: bool) -> None:
    assert bool(check("2276-4", [observation])) is flagged


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "registered"])
def test_unresulted_observations_ignored(status: str) -> None:
    assert check("1988-5", [result("1988-5", 5, "mg/L", ago(hours=2), status=status)]) is None


def test_preliminary_result_counts() -> None:
    assert check("1988-5", [result("1988-5", 5, "mg/L", ago(hours=2), status="preliminary")])


def test_newest_result_reported() -> None:
    older = {**result("3016-3", 4.0, "m[IU]/L", ago(days=40)), "id": "old"}
    newer = {**result("3016-3", 2.0, "m[IU]/L", ago(days=10)), "id": "new"}
    f = check("3016-3", [newer, older])
    assert f.last_result.reference == "Observation/new" and f.last_result.value == 2.0


@pytest.mark.parametrize(
    ("order", "flagged"),
    [
        (pending("3016-3", ago(days=10)), True),
        (pending("3016-3", ago(days=90)), False),  # outside 2 months
        (pending("3016-3", ago(days=10), status="completed"), False),
        (pending("3016-3", ago(days=10), status="draft"), False),
        (pending("3016-3", ago(days=10), oid="draft"), False),  # the draft itself
        (pending("1988-5", ago(days=1)), False),  # another test
    ],
)
def test_pending_orders(order: dict[str, Any], flagged: bool) -> None:
    f = check("3016-3", orders=[order])
    assert bool(f) is flagged
    if f:
        assert (f.kind, f.severity) == ("retest-pending", "warning")
        assert (
            f.pending_order == "ServiceRequest/sr9" and f.pending_date == ago(days=10).isoformat()
        )
        assert f.last_result is None and "B-E5" in f.citation


def test_result_preferred_over_pending_order() -> None:
    f = check(
        "3016-3", [result("3016-3", 2.0, "m[IU]/L", ago(days=5))], [pending("3016-3", ago(days=2))]
    )
    assert f.kind == "retest-too-soon"


@pytest.mark.parametrize(
    "service_request",
    [
        draft("2857-1"),  # PSA: not shipped (G147 asks for a repeat when raised)
        draft("2039-6"),  # CEA: no G147 row
        draft("4548-4", system="http://snomed.info/sct"),
        {"resourceType": "ServiceRequest"},
        {"code": "4548-4"},
        {},
    ],
)
def test_unknown_or_malformed_codes(service_request: dict[str, Any]) -> None:
    recent = [result("4548-4", 7, "%", ago(days=1))]
    assert (
        retest_too_soon(
            service_request=service_request, observations=recent, pending_orders=[], now=NOW
        )
        is None
    )


def test_calendar_months_clamp_to_month_end() -> None:
    rule = intervals()["1834-1"]  # AFP: 3 months
    end_of_may = datetime.fromisoformat("2025-05-31T10:00:00+00:00")
    assert rule.since(end_of_may) == datetime.fromisoformat("2025-02-28T10:00:00+00:00")
    assert intervals()["2276-4"].since(NOW) == datetime.fromisoformat("2024-06-01T12:00:00+00:00")
