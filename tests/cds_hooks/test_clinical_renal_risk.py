"""renal_risk: ACR–NKF eGFR thresholds, reported vs CKD-EPI 2021 computed eGFR, look-back window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from cds_hooks.clinical.contrast import renal_risk
from cds_hooks.clinical.fhir_read import LOINC
from cds_hooks.clinical.imaging_catalog import Orderable, lookup

NOW = datetime.fromisoformat("2025-06-01T12:00:00+00:00")
CT_WITH = lookup(LOINC, "24628-0")  # CT Chest W contrast IV
CT_WITHOUT = lookup(LOINC, "29252-4")
CT_UNSPECIFIED = lookup(LOINC, "24627-2")
MR_WITH = lookup(LOINC, "24589-4")
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1955-01-01", "gender": "male"}


def obs(
    code: str,
    value: float,
    unit: str,
    days_ago: float = 5,
    *,
    oid: str = "o1",
    status: str = "final",
    comparator: str | None = None,
) -> dict[str, Any]:
    qty: dict[str, Any] = {"value": value, "unit": unit}
    if comparator:
        qty["comparator"] = comparator
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": (NOW - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": qty,
    }


def egfr(value: float, days_ago: float = 5, **kw: Any) -> dict[str, Any]:
    return obs("98979-8", value, "mL/min/{1.73_m2}", days_ago, **kw)


def creatinine_umol_for(target: float, age: int = 70) -> float:
    """Serum creatinine (µmol/L) giving ``target`` eGFR for a man (CKD-EPI 2021, Scr > κ)."""
    ratio = (target / (142 * 0.9938**age)) ** (-1 / 1.2)
    return float(ratio * 0.9 * 88.4)


def risk(orderable: Orderable | None, observations: list[Any], **kw: Any) -> Any:
    kw.setdefault("patient", PATIENT)
    return renal_risk(orderable=orderable, observations=observations, now=NOW, **kw)


@pytest.mark.parametrize(
    ("value", "comparator", "kind", "severity"),
    [
        (29.9, None, "egfr-below-30", "warning"),
        (30, None, "egfr-30-44", "info"),  # "< 30" is the ACR threshold: 30 is not below it
        (44.9, None, "egfr-30-44", "info"),
        (45, None, "ok", "info"),
        (90, ">", "ok", "info"),  # reported as ">90"
        (15, "<", "egfr-below-30", "warning"),
        (30, "<", "egfr-below-30", "warning"),
        (45, "<", "cannot-assess", "info"),  # "<45" straddles 30
        (10, ">", "cannot-assess", "info"),
    ],
)
def test_iodinated_thresholds_on_reported_egfr(
    value: float, comparator: str | None, kind: str, severity: str
) -> None:
    f = risk(CT_WITH, [egfr(value, comparator=comparator)])
    assert (f.kind, f.severity) == (kind, severity)
    if kind != "cannot-assess":
        assert f.egfr == value and f.computed is False
        assert f.source.reference == "Observation/o1" and f.source.code == "98979-8"
    assert "Davenport" in f.citation and f.source_url.endswith("PMC7525144/")
    assert f.citation in f.detail


@pytest.mark.parametrize(("value", "kind"), [(29.9, "egfr-below-30"), (30, "ok"), (35, "ok")])
def test_gadolinium_thresholds(value: float, kind: str) -> None:
    f = risk(MR_WITH, [egfr(value)])
    assert f.kind == kind
    assert "Weinreb" in f.citation and f.source_url.endswith("PMC7873723/")
    if kind == "egfr-below-30":
        assert "group II" in f.detail and "group I agents are contraindicated" in f.detail


@pytest.mark.parametrize(
    ("target", "shown", "kind"),
    [
        (30.0, 30.0, "egfr-30-44"),
        (29.9, 29.9, "egfr-below-30"),
        (29.96, 30.0, "egfr-30-44"),  # rounded to the displayed 0.1 before classing
        (45.0, 45.0, "ok"),
    ],
)
def test_computed_from_creatinine_edges(target: float, shown: float, kind: str) -> None:
    umol = creatinine_umol_for(target)
    f = risk(CT_WITH, [obs("14682-9", umol, "umol/L", oid="scr")])
    assert (f.kind, f.egfr, f.computed) == (kind, shown, True)
    assert f.source.reference == "Observation/scr" and f.source.unit == "umol/L"
    assert f.data["basis"]["age_years"] == 70 and f.data["basis"]["sex"] == "male"
    assert "CKD-EPI 2021" in f.detail


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (200, "umol/L"),
        (200, "µmol/L"),
        (200, "μmol/L"),  # Greek mu
        (0.2, "mmol/L"),
        (200 / 88.4, "mg/dL"),
        (200 / 88.4, "mg/dl"),
    ],
)
def test_creatinine_units(value: float, unit: str) -> None:
    # clinical-reference §4 row 1: man, 70, 200 µmol/L -> 30.40
    f = risk(CT_WITH, [obs("2160-0", value, unit)])
    assert f.computed is True and f.egfr == 30.4


def test_female_uses_the_female_equation() -> None:
    woman = {**PATIENT, "gender": "female"}
    f = risk(CT_WITH, [obs("2160-0", 200, "umol/L")], patient=woman)
    assert f.egfr == 22.8 and f.kind == "egfr-below-30"  # §4 row 2: 22.75 -> 22.8


def test_age_at_sample_date_not_today() -> None:
    # Born 1955-06-10: 70 on 2025-06-10 but still 69 when sampled on 2025-05-27.
    f = risk(
        CT_WITH, [obs("2160-0", 200, "umol/L")], patient={**PATIENT, "birthDate": "1955-06-10"}
    )
    assert f.data["basis"]["age_years"] == 69


@pytest.mark.parametrize(
    ("days_ago", "window", "kind"),
    [(89, 90, "egfr-30-44"), (91, 90, "no-recent-creatinine"), (20, 14, "no-recent-creatinine")],
)
def test_window(days_ago: int, window: int, kind: str) -> None:
    f = risk(CT_WITH, [obs("2160-0", 200, "umol/L", days_ago)], creatinine_window_days=window)
    assert f.kind == kind


@pytest.mark.parametrize(
    ("observations", "egfr_used", "computed"),
    [
        # same sample time: the reported eGFR is preferred
        ([obs("2160-0", 200, "umol/L", 3, oid="scr"), egfr(50, 3, oid="eg")], 50, False),
        # newer creatinine wins over an older reported eGFR
        ([obs("2160-0", 200, "umol/L", 2, oid="scr"), egfr(50, 10, oid="eg")], 30.4, True),
        # newer reported eGFR wins over an older creatinine
        ([obs("2160-0", 200, "umol/L", 10, oid="scr"), egfr(50, 2, oid="eg")], 50, False),
        # most recent of two reported values
        ([egfr(25, 20, oid="old"), egfr(50, 1, oid="new")], 50, False),
    ],
)
def test_prefers_the_most_recent(
    observations: list[dict[str, Any]], egfr_used: float, computed: bool
) -> None:
    f = risk(CT_WITH, observations)
    assert (f.egfr, f.computed) == (egfr_used, computed)


@pytest.mark.parametrize(
    ("birth", "severity"),
    [("1950-01-01", "warning"), ("1985-01-01", "info"), (None, "info")],
)
def test_no_recent_creatinine(birth: str | None, severity: str) -> None:
    patient = {**PATIENT, "birthDate": birth} if birth else {"gender": "male"}
    f = risk(CT_WITH, [], patient=patient)
    assert (f.kind, f.severity, f.egfr, f.source) == ("no-recent-creatinine", severity, None, None)
    assert "Patient Selection" in f.citation and "90 days" in f.summary


def test_no_recent_creatinine_gadolinium_is_info_even_when_old() -> None:
    f = risk(MR_WITH, [], patient={**PATIENT, "birthDate": "1940-01-01"})
    assert (f.kind, f.severity) == ("no-recent-creatinine", "info")


@pytest.mark.parametrize(
    ("patient", "observation", "reason"),
    [
        ({**PATIENT, "gender": "unknown"}, obs("2160-0", 200, "umol/L"), "gender"),
        ({"gender": "male"}, obs("2160-0", 200, "umol/L"), "birthDate"),
        ({**PATIENT, "birthDate": "2015-01-01"}, obs("2160-0", 50, "umol/L"), "adults"),
        (PATIENT, obs("2160-0", 2, "g/L"), "unsupported unit"),
        (PATIENT, obs("2160-0", -1, "umol/L"), "positive"),
        (PATIENT, obs("98979-8", 40, "%"), "unsupported unit"),
    ],
)
def test_cannot_assess(patient: dict[str, Any], observation: dict[str, Any], reason: str) -> None:
    f = risk(CT_WITH, [observation], patient=patient)
    assert f.kind == "cannot-assess" and f.egfr is None
    assert any(reason in p for p in f.data["problems"])


def test_unusable_newest_falls_back_to_an_older_usable_value() -> None:
    f = risk(CT_WITH, [obs("2160-0", 2, "g/L", 1, oid="bad"), egfr(25, 10, oid="good")])
    assert (f.kind, f.egfr, f.source.reference) == ("egfr-below-30", 25, "Observation/good")


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered", "preliminary"])
def test_unusable_status_ignored(status: str) -> None:
    assert risk(CT_WITH, [egfr(20, status=status)]).kind == "no-recent-creatinine"


@pytest.mark.parametrize("orderable", [None, CT_WITHOUT, CT_UNSPECIFIED])
def test_no_contrast_no_finding(orderable: Orderable | None) -> None:
    assert risk(orderable, [egfr(10)]) is None


def test_naive_now_is_utc() -> None:
    f = renal_risk(
        orderable=CT_WITH, patient=PATIENT, observations=[egfr(20)], now=NOW.replace(tzinfo=None)
    )
    assert f is not None and f.kind == "egfr-below-30"


def test_non_contrast_alternative_is_named() -> None:
    f = risk(CT_WITH, [egfr(20)])
    assert f.data["non_contrast_code"] == "29252-4" and "CT Chest WO contrast" in f.detail
