"""Malformed FHIR never breaks a rule; findings keep the card rules; the tables are well formed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_hooks.clinical import contrast, duplicates, renal, retest
from cds_hooks.clinical.contrast import contrast_allergy, metformin_advice, renal_risk
from cds_hooks.clinical.duplicates import duplicate_imaging
from cds_hooks.clinical.fhir_read import LOINC, parse_datetime
from cds_hooks.clinical.findings import SUMMARY_MAX, Finding, clip
from cds_hooks.clinical.imaging_catalog import lookup
from cds_hooks.clinical.retest import retest_too_soon
from cds_hooks.clinical.tables import read_table

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CT_WITH = lookup(LOINC, "24628-0")
MR_WITH = lookup(LOINC, "24589-4")

GARBAGE: list[Any] = [
    None,
    "Observation",
    42,
    [],
    {},
    {"resourceType": "Observation", "code": "2160-0"},
    {"code": {"coding": [{"system": LOINC, "code": "2160-0"}]}, "status": "final"},
    {
        "code": {"coding": [{"system": LOINC, "code": "2160-0"}]},
        "status": "final",
        "effectiveDateTime": "yesterday",
        "valueQuantity": {"value": 1.0, "unit": "mg/dL"},
    },
    {
        "code": {"coding": [{"system": LOINC, "code": "98979-8"}]},
        "status": "final",
        "effectiveDateTime": "2025-05-30",
        "valueQuantity": {"value": "25", "unit": "mL/min"},
    },
    {
        "code": {"coding": [{"system": LOINC, "code": "98979-8"}]},
        "status": "final",
        "effectiveDateTime": "2025-05-30",
        "valueQuantity": {"value": True, "unit": "mL/min"},
    },
    {"resourceType": "ImagingStudy", "started": "2025-13-45", "series": "x", "modality": "CT"},
    {"resourceType": "ImagingStudy", "started": "2025-05-30", "series": [None, {"modality": 3}]},
    {"resourceType": "ServiceRequest", "status": "active", "code": None, "authoredOn": 20250530},
    {"resourceType": "AllergyIntolerance", "code": {"coding": None}, "reaction": "hives"},
    {"resourceType": "MedicationRequest", "status": "active", "medicationCodeableConcept": 7},
]


def test_renal_risk_survives_garbage(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        f = renal_risk(
            orderable=CT_WITH, patient={"birthDate": "not a date"}, observations=GARBAGE, now=NOW
        )
    assert f is not None and f.kind in ("no-recent-creatinine", "cannot-assess")
    assert any("no readable date" in r.message for r in caplog.records)  # malformed input is logged


@pytest.mark.parametrize("patient", [None, "Patient/1", {"gender": 1, "birthDate": 1955}])
def test_renal_risk_with_a_bad_patient(patient: Any) -> None:
    scr = {
        "id": "c",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2160-0"}]},
        "effectiveDateTime": "2025-05-30",
        "valueQuantity": {"value": 1.2, "unit": "mg/dL"},
    }
    f = renal_risk(orderable=CT_WITH, patient=patient, observations=[scr], now=NOW)
    assert f is not None and f.kind == "cannot-assess"


def test_other_rules_survive_garbage() -> None:
    assert contrast_allergy(orderable=CT_WITH, allergies=GARBAGE) is None
    assert metformin_advice(orderable=CT_WITH, medication_requests=GARBAGE, egfr=10.0) is None
    assert duplicate_imaging(orderable=CT_WITH, studies=GARBAGE, orders=GARBAGE, now=NOW) == []
    draft = {"code": {"coding": [{"system": LOINC, "code": "1988-5"}]}}
    assert (
        retest_too_soon(
            service_request=draft, observations=GARBAGE, pending_orders=GARBAGE, now=NOW
        )
        is None
    )


def test_unexpected_errors_are_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(contrast, "latest_egfr", boom)
    monkeypatch.setattr(duplicates, "_study_prior", boom)
    monkeypatch.setattr(retest, "_last_result", boom)
    with caplog.at_level(logging.ERROR):
        assert renal_risk(orderable=CT_WITH, patient={}, observations=[], now=NOW) is None
        assert duplicate_imaging(orderable=CT_WITH, studies=[{}], orders=[], now=NOW) == []
        draft = {"code": {"coding": [{"system": LOINC, "code": "1988-5"}]}}
        assert (
            retest_too_soon(service_request=draft, observations=[], pending_orders=[], now=NOW)
            is None
        )
    assert sum("clinical rule" in r.message for r in caplog.records) == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025", "2025-01-01T00:00:00+00:00"),
        ("2025-05", "2025-05-01T00:00:00+00:00"),
        ("2025-05-30", "2025-05-30T00:00:00+00:00"),
        ("2025-05-30T10:15:00Z", "2025-05-30T10:15:00+00:00"),
        ("2025-05-30T10:15:00.123+02:00", "2025-05-30T08:15:00.123000+00:00"),
        ("2025-05-30T10:15", "2025-05-30T10:15:00+00:00"),  # no zone: read as UTC
        ("2025-13-01", None),
        ("2025-02-30", None),
        ("30/05/2025", None),
        ("", None),
        (20250530, None),
        (None, None),
    ],
)
def test_parse_datetime(raw: Any, expected: str | None) -> None:
    parsed = parse_datetime(raw)
    assert (parsed.isoformat() if parsed else None) == expected


def test_summary_is_clipped_to_the_card_limit() -> None:
    f = Finding(
        kind="k", severity="info", summary="x" * 300, detail="", citation="c", source_url="u"
    )
    assert len(f.summary) == SUMMARY_MAX and f.summary.endswith("…")
    assert clip("a\nb  c") == "a b c"
    with pytest.raises(ValueError):
        Finding(kind="k", severity="fatal", summary="s", detail="", citation="c", source_url="u")  # type: ignore[arg-type]


def test_long_allergy_text_cannot_break_the_summary() -> None:
    record = {"code": {"text": "Iodinated contrast " + "very " * 60 + "severe"}}
    f = contrast_allergy(orderable=CT_WITH, allergies=[record])
    assert f is not None and len(f.summary) <= SUMMARY_MAX


@pytest.mark.parametrize(
    "name",
    [
        "imaging_orderables.csv",
        "contrast_substances.csv",
        "metformin_rxnorm.csv",
        "retest_intervals.csv",
        "body_regions.csv",
    ],
)
def test_tables_declare_status(name: str) -> None:
    rows = read_table(name)
    assert rows and all(row["status"] in ("V", "V*", "UNVERIFIED", "local") for row in rows)


def test_module_constants_cite_sources() -> None:
    assert "Inker" in renal.CITATION
    assert retest.SOURCE_URL.startswith("https://www.rcpath.org/")
    assert contrast.IODINATED_URL.startswith("https://") and contrast.GBCA_URL.startswith(
        "https://"
    )
