"""Lenient reading of SENAITE payloads: deviations are counted, broken records are Rejected."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.senaite.loinc import load_table
from adapters.senaite.mapper import MappedSample, map_raw_sample
from adapters.senaite.payloads import AnalysisPayload, Deviations, SamplePayload
from fhir_facade.fhir import validate

SAMPLE: dict[str, Any] = {
    "uid": "1" * 32,
    "id": "SER-0042",
    "review_state": "published",
    "MedicalRecordNumber": {"temporary": False, "value": "MRN-42"},
    "DateSampled": "2024-10-07T07:45:00+00:00",
    "modified": "2024-10-07T09:00:00+00:00",
    "SomeAddOnField": {"kept": True},
}


def analysis(**fields: Any) -> dict[str, Any]:
    return {
        "uid": "2" * 32,
        "id": "K",
        "Keyword": "K",
        "title": "Potassium",
        "review_state": "published",
        "Result": "4.2",
        "Unit": "mmol/L",
        **fields,
    }


def run(sample: dict[str, Any], *analyses: dict[str, Any]) -> tuple[MappedSample, Deviations]:
    deviations = Deviations()
    out = map_raw_sample(
        sample,
        list(analyses),
        table=load_table(),
        source_url="http://lims/senaite",
        deviations=deviations,
    )
    for resource in out.resources:
        assert validate(resource) == resource
    return out, deviations


def observation(out: MappedSample) -> dict[str, Any]:
    found = [r for r in out.resources if r["resourceType"] == "Observation"]
    assert len(found) == 1
    return found[0]


def test_numbers_where_strings_are_documented_are_read_and_counted() -> None:
    out, deviations = run(SAMPLE, analysis(Result=4.2, Priority=3))
    assert observation(out)["valueQuantity"]["value"] == 4.2
    assert deviations.counts["number-as-string"] == 1


def test_bad_and_naive_dates() -> None:
    deviations = Deviations()
    parsed = SamplePayload.model_validate(
        {
            **SAMPLE,
            "DateSampled": "yesterday",
            "DateReceived": "2024-10-07T08:00:00",
            "DatePublished": "",
        },
        context={"deviations": deviations},
    )
    assert parsed.DateSampled is None and parsed.DatePublished is None
    assert parsed.DateReceived is not None and parsed.DateReceived.utcoffset() is not None
    assert deviations.counts == {"bad-date": 1, "naive-date": 1}


def test_mrn_shapes() -> None:
    bare, deviations = run(
        {**SAMPLE, "MedicalRecordNumber": "MRN-7", "PatientFullName": "Jane Roe"}
    )
    subject = bare.resources[0]["subject"]
    assert subject["identifier"]["value"] == "MRN-7" and subject["display"] == "Jane Roe"
    assert deviations.counts["bare-mrn"] == 1
    from_catalog, _ = run(
        {**SAMPLE, "MedicalRecordNumber": None, "getMedicalRecordNumberValue": "MRN-8"}
    )
    assert from_catalog.resources[0]["subject"]["identifier"]["value"] == "MRN-8"
    blank, _ = run({**SAMPLE, "MedicalRecordNumber": {"temporary": True, "value": " "}})
    assert blank.resources == [] and "MedicalRecordNumber" in blank.rejected[0].reason


def test_unknown_fields_are_kept() -> None:
    parsed = SamplePayload.model_validate(SAMPLE)
    assert parsed.model_extra == {"SomeAddOnField": {"kept": True}}


@pytest.mark.parametrize("broken", [{"id": "SER-1"}, {"uid": "1" * 32}, {"uid": 5, "id": 7}])
def test_a_sample_without_identity_is_rejected(broken: dict[str, Any]) -> None:
    out, _ = run(broken, analysis())
    assert out.resources == []
    assert len(out.rejected) == 1 and "malformed sample" in out.rejected[0].reason


def test_a_broken_analysis_is_rejected_and_the_rest_maps() -> None:
    broken = {"id": "CREA", "Keyword": "CREA", "review_state": "published"}
    out, _ = run(SAMPLE, broken, analysis())
    assert [r.source_ref for r in out.rejected] == ["Analysis/CREA"]
    assert observation(out)["code"]["coding"][0]["code"] == "2823-3"
    report = next(r for r in out.resources if r["resourceType"] == "DiagnosticReport")
    assert len(report["result"]) == 1


def test_wrong_types_are_dropped_and_counted() -> None:
    out, deviations = run(
        SAMPLE,
        analysis(review_state=["published"]),
        analysis(uid="3" * 32, ResultsRange="3.5-5.1", StringResult=0),
    )
    assert len(out.rejected) == 1 and "review_state" in out.rejected[0].reason
    assert "referenceRange" not in observation(out)
    assert deviations.counts["unexpected-type"] == 2


def test_uncoded_keyword_and_odd_units() -> None:
    out, deviations = run(SAMPLE, analysis(Keyword="RBC", title="Red cells", Unit="x10E12/L"))
    obs = observation(out)
    assert obs["code"]["coding"] == [
        {"system": "urn:cdss:senaite:keyword", "code": "RBC", "display": "Red cells"}
    ]
    assert obs["valueQuantity"] == {"value": 4.2, "unit": "x10E12/L"}
    assert deviations.counts["keyword-not-in-loinc-table"] == 1
    assert deviations.counts["non-ucum-unit"] == 1
    mismatch, deviations = run(SAMPLE, analysis(Unit="mg/dL"))
    assert [c["system"] for c in observation(mismatch)["code"]["coding"]] == [
        "urn:cdss:senaite:keyword"
    ]
    assert deviations.counts["unit-not-in-loinc-table"] == 1


def test_text_results_and_missing_values() -> None:
    out, _ = run(SAMPLE, analysis(Result="Haemolysed", Unit=None))
    assert observation(out)["valueString"] == "Haemolysed"
    empty, deviations = run(SAMPLE, analysis(Result=""))
    assert observation(empty)["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert deviations.counts["empty-result"] == 1


def test_references_as_bare_uids() -> None:
    deviations = Deviations()
    parsed = AnalysisPayload.model_validate(
        analysis(RetestOf="9" * 32), context={"deviations": deviations}
    )
    assert parsed.RetestOf is not None and parsed.RetestOf.uid == "9" * 32
    assert deviations.counts["bare-uid-reference"] == 1
