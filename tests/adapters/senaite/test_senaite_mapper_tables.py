"""Tables of the SENAITE mapping: statuses, interpretation, result and unit parsing, LOINC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.senaite.loinc import LoincTable, LoincTableError, check_digit, load_table
from adapters.senaite.mapper import map_raw_sample
from adapters.senaite.results import Range, interpretation, parse_range, parse_result
from adapters.senaite.terminology import ucum_unit

UID = "a" * 32
ANALYSIS_UID = "b" * 32


def sample(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "uid": UID,
        "id": "SER-0001",
        "review_state": state,
        "MedicalRecordNumber": {"temporary": False, "value": "MRN-9"},
        "DateSampled": "2024-10-07T07:45:00+00:00",
        "SampleTypeTitle": "Serum",
        "modified": "2024-10-07T09:00:00+00:00",
        **extra,
    }


def analysis(state: str | None, result: str = "1.0", **extra: Any) -> dict[str, Any]:
    return {
        "uid": ANALYSIS_UID,
        "id": "CREA",
        "Keyword": "CREA",
        "title": "Creatinine",
        "review_state": state,
        "Result": result,
        "Unit": "mg/dL",
        "ResultCaptureDate": "2024-10-07T08:30:00+00:00",
        "ResultsRange": {"min": "0.6", "max": "1.3"},
        **extra,
    }


def by_type(sample_state: str, analysis_state: str | None, result: str = "1.0") -> dict[str, Any]:
    out = map_raw_sample(
        sample(sample_state),
        [analysis(analysis_state, result)],
        table=load_table(),
        source_url="http://lims",
    )
    return {r["resourceType"]: r for r in out.resources} | {"rejected": out.rejected}


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("unassigned", None),
        ("registered", None),
        ("assigned", None),
        ("cancelled", None),
        ("to_be_verified", "registered"),
        ("verified", "preliminary"),
        ("published", "final"),
        ("retracted", "entered-in-error"),
        ("rejected", "cancelled"),
    ],
)
def test_observation_status_and_reported_states(state: str, status: str | None) -> None:
    observation = by_type("sample_received", state).get("Observation")
    assert (observation or {}).get("status") == status


def test_withdrawn_analysis_without_a_result_is_not_reported() -> None:
    assert "Observation" not in by_type("sample_received", "rejected", result="")


@pytest.mark.parametrize(
    ("state", "request_status", "report_status", "specimen_status"),
    [
        ("sample_due", "active", None, None),
        ("sample_received", "active", None, "available"),
        ("to_be_verified", "active", None, "available"),
        ("verified", "active", "preliminary", "available"),
        ("published", "completed", "final", "available"),
        ("invalid", "entered-in-error", "entered-in-error", "available"),
        ("cancelled", "revoked", None, "unavailable"),
        ("rejected", "revoked", None, "unsatisfactory"),
    ],
)
def test_sample_status_maps(
    state: str, request_status: str, report_status: str | None, specimen_status: str | None
) -> None:
    mapped = by_type(state, "verified")
    assert mapped["ServiceRequest"]["status"] == request_status
    assert mapped["ServiceRequest"]["intent"] == "order"
    assert (mapped.get("DiagnosticReport") or {}).get("status") == report_status
    assert mapped["Specimen"].get("status") == specimen_status


def test_results_of_an_invalidated_sample_are_withdrawn() -> None:
    mapped = by_type("invalid", "published")
    assert mapped["Observation"]["status"] == "entered-in-error"
    assert "result" not in mapped["DiagnosticReport"]


def test_unknown_review_state_is_rejected_not_guessed() -> None:
    mapped = by_type("published", None)
    assert "Observation" not in mapped
    assert [r.source_ref.split(" ")[0] for r in mapped["rejected"]] == [f"Analysis/{ANALYSIS_UID}"]


FULL = Range(low=3.5, high=5.1, critical_low=2.8, critical_high=6.2)


@pytest.mark.parametrize(
    ("value", "comparator", "rng", "flag"),
    [
        (4.0, None, FULL, "N"),
        (3.5, None, FULL, "N"),
        (5.1, None, FULL, "N"),
        (3.2, None, FULL, "L"),
        (2.7, None, FULL, "LL"),
        (5.5, None, FULL, "H"),
        (6.3, None, FULL, "HH"),
        (4.0, None, Range(), None),
        (3.5, None, Range(low=3.5, low_inclusive=False), "L"),
        (5.1, None, Range(high=5.1, high_inclusive=False), "H"),
        (0.3, "<", Range(low=0, high=5), "N"),
        (0.5, "<", Range(low=1, high=5), "L"),
        (3.0, "<", Range(low=1, high=5), None),
        (2.0, "<", Range(low=1, high=5, critical_low=2), "LL"),
        (1000, ">", Range(low=1, high=100), "H"),
        (1000, ">", Range(high=100, critical_high=500), "HH"),
        (50, ">", Range(high=100), None),
        (100, ">=", Range(high=100), None),
        (100, ">", Range(high=100), "H"),
        (5.0, "<=", Range(high=10), "N"),
    ],
)
def test_interpretation(value: float, comparator: str | None, rng: Range, flag: str | None) -> None:
    assert interpretation(value, comparator, rng) == flag


def test_parse_range_reads_senaite_records() -> None:
    rng = parse_range(
        {
            "min": "3.5",
            "max": "5.1",
            "warn_min": "",
            "warn_max": "6.2",
            "min_operator": "gt",
            "max_operator": "leq",
            "rangecomment": "adult",
        }
    )
    assert rng == Range(low=3.5, high=5.1, critical_high=6.2, low_inclusive=False, comment="adult")
    assert parse_range(None).empty and parse_range({"min": "x"}).empty


@pytest.mark.parametrize(
    ("raw", "operand", "value", "comparator", "text"),
    [
        ("4.5", None, 4.5, None, None),
        ("0.3", "<", 0.3, "<", None),
        ("<0.3", None, 0.3, "<", None),
        ("< 0.3", None, 0.3, "<", None),
        ("<=5", None, 5.0, "<=", None),
        ("≥ 90", None, 90.0, ">=", None),
        (">1000", ">", 1000.0, ">", None),
        ("4,5", None, 4.5, None, None),
        ("1.2e3", None, 1200.0, None, None),
        ("Positive", None, None, None, "Positive"),
        ("nan", None, None, None, "nan"),
        ("", "<", None, None, None),
    ],
)
def test_parse_result(
    raw: str, operand: str | None, value: float | None, comparator: str | None, text: str | None
) -> None:
    parsed = parse_result(raw, operand)
    assert (parsed.value, parsed.comparator, parsed.text) == (value, comparator, text)


def test_parse_result_string_and_select_results() -> None:
    assert parse_result("12", string_result=True).text == "12"
    options = [
        {"ResultValue": "0", "ResultText": "Negative"},
        {"ResultValue": "1", "ResultText": "Positive"},
    ]
    assert parse_result("1", options=options).text == "Positive"
    assert parse_result("<1", ">").deviation is not None


@pytest.mark.parametrize(
    ("typed", "ucum"),
    [
        ("mg/dL", "mg/dL"),
        ("mg/dl", "mg/dL"),
        ("µmol/L", "umol/L"),
        ("μmol/l", "umol/L"),
        ("x10^9/L", "10*9/L"),
        ("10^3/uL", "10*3/uL"),
        ("K/uL", "10*3/uL"),
        ("IU/L", "[iU]/L"),
        ("U/L", "U/L"),
        ("%", "%"),
        ("mL/min/1.73 m²", "mL/min/{1.73_m2}"),
        ("mL/min/{1.73_m2}", "mL/min/{1.73_m2}"),
        ("furlongs", None),
        ("", None),
        (None, None),
    ],
)
def test_ucum_units(typed: str | None, ucum: str | None) -> None:
    assert ucum_unit(typed) == ucum


ANALYTES = {
    "CREA": "2160-0",
    "EGFR": "98979-8",
    "HGB": "718-7",
    "WBC": "6690-2",
    "PLT": "777-3",
    "CRP": "1988-5",
    "CEA": "2039-6",
    "CA199": "24108-3",
    "AFP": "1834-1",
    "PSA": "2857-1",
    "LDH": "2532-0",
    "ALB": "1751-7",
    "ALT": "1742-6",
    "AST": "1920-8",
    "GLU": "2345-7",
    "HBA1C": "4548-4",
    "K": "2823-3",
    "NA": "2951-2",
}


def loinc_of(keyword: str, unit: str | None) -> str | None:
    entry = load_table().lookup(keyword, unit)
    return entry.loinc if entry else None


def test_shipped_table_covers_the_18_analytes_with_their_usual_units() -> None:
    table = load_table()
    for keyword, code in ANALYTES.items():
        assert loinc_of(keyword, table.rows(keyword)[0].ucum) == code, keyword
    assert loinc_of("crea", "umol/L") == "14682-9"
    assert loinc_of("CREA", "mg/dL") == "2160-0"
    assert loinc_of("CREA", "g/L") is None  # no row accepts it: no code beats a wrong one
    assert loinc_of("CREA", None) is None  # ambiguous without a unit
    assert loinc_of("HGB", None) == "718-7"
    assert loinc_of("HGB", "g/L") == "718-7"


def test_check_digits() -> None:
    assert check_digit("2160") == 0 and check_digit("98979") == 8 and check_digit("718") == 7


def test_a_site_table_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "site.csv"
    path.write_text("keyword,loinc,display,ucum,units\nRBC,789-8,Erythrocytes,10*6/uL,\n")
    monkeypatch.setenv("CDSS_SENAITE_LOINC_TABLE", str(path))
    table = load_table()
    assert table.keywords() == {"RBC"} and table.lookup("RBC", "10*6/uL") is not None
    assert table.origin == str(path)


@pytest.mark.parametrize(
    "content",
    [
        "keyword,loinc\nX,1-1\n",
        "keyword,loinc,display,ucum,units\nX,2160-1,bad check digit,mg/dL,\n",
        "keyword,loinc,display,ucum,units\nX,ABC,not a code,mg/dL,\n",
    ],
)
def test_bad_tables_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LoincTableError):
        LoincTable.from_csv(path)
