"""The finding as FHIR (the docs/ai-findings.md contract, valid R4) and as a TID 1500 SR."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from fhir_facade.fhir import validate
from models.imaging import fhir
from models.imaging.data import DEFAULT_INDEX_DATE
from models.imaging.findings import findings_by_study, viewer_context
from models.imaging.infer import Finding
from models.imaging.sr import evidence, measurement_report, sr_uids
from simulators.cohort.ct import ct_series
from simulators.cohort.model import CohortGenerator

CTX = fhir.StudyContext(
    "1.2.3", "study-1", "Patient/p1", "2025-05-01T09:00:00Z", "2025-05-02T10:00:00Z"
)


def _finding(present: bool, series: list[Dataset]) -> Finding:
    return Finding(
        probability=0.91 if present else 0.04,
        present=present,
        score=1.0,
        model="lung-nodule-ct@2",
        series_uid=str(series[0].SeriesInstanceUID),
        centre_mm=(10.0, -20.0, 150.0) if present else None,
        sop_uid=str(series[20].SOPInstanceUID) if present else None,
        pixel_row=42 if present else None,
        pixel_column=51 if present else None,
        slice_index=20 if present else None,
    )


@pytest.fixture(scope="module")
def series() -> list[Dataset]:
    gen = CohortGenerator(3, DEFAULT_INDEX_DATE)
    return ct_series(next(p for p in (gen.patient(i) for i in range(1, 50)) if p.ct), 3)


def _codes(obs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]["coding"][0]["code"]: c for c in obs["component"]}


@pytest.mark.parametrize("present", [True, False])
def test_fhir_resources_follow_the_contract(present: bool, series: list[Dataset]) -> None:
    obs, report = fhir.resources(_finding(present, series), CTX)
    for resource in (obs, report):
        validate(resource)  # R4-valid as the store will check it
    assert report["identifier"] == [
        {"system": "urn:cdss:ai-report", "value": "1.2.3|lung-nodule-ct|2"}
    ]
    assert report["meta"]["tag"] == [{"system": "urn:cdss:ai", "code": "report"}]
    assert report["result"] == [{"reference": f"Observation/{obs['id']}"}]
    assert report["category"][0]["coding"][0]["code"] == "RAD"
    assert (
        obs["contained"][0]["version"] == [{"value": "2"}]
        and obs["device"]["reference"] == "#model"
    )
    codes = _codes(obs)
    assert codes["probability"]["valueQuantity"]["code"] == "1"
    value = obs["valueCodeableConcept"]["coding"][0]["code"]
    assert value == ("52101004" if present else "2667000")
    assert ("location-x" in codes) is present and ("pixel-row" in codes) is present
    if present:
        assert codes["location-z"]["valueQuantity"]["value"] == 150.0
        assert codes["sop-instance-uid"]["valueString"] == series[20].SOPInstanceUID
    again = fhir.resources(_finding(present, series), CTX)
    assert [r["id"] for r in again] == [obs["id"], report["id"]]  # a re-run updates in place
    [read] = findings_by_study([obs]).values()
    assert read.present is present and read.model == "lung-nodule-ct@2"
    assert viewer_context(read) == {"view": "imaging", "imagingStudy": "ImagingStudy/study-1",
                                    "series": series[0].SeriesInstanceUID}  # fmt: skip


def _items(ds: Dataset) -> list[Dataset]:
    out = []
    for item in getattr(ds, "ContentSequence", []):
        out.append(item)
        out.extend(_items(item))
    return out


@pytest.mark.parametrize("present", [True, False])
def test_the_sr_is_a_tid_1500_measurement_report(present: bool, series: list[Dataset]) -> None:
    finding = _finding(present, series)
    sr = measurement_report(finding, series)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert (sr.SeriesInstanceUID, sr.SOPInstanceUID) == sr_uids(
        series[0].StudyInstanceUID, finding.model
    )
    assert sr.StudyInstanceUID == series[0].StudyInstanceUID and sr.PatientID == series[0].PatientID
    items = _items(sr)
    codes = {
        (i.ConceptNameCodeSequence[0].CodeValue, i.ValueType)
        for i in items
        if "ConceptNameCodeSequence" in i
    }
    assert ("probability", "NUM") in codes
    scoords = [i for i in items if i.ValueType == "SCOORD"]
    if present:
        [point] = scoords
        assert point.GraphicType == "POINT"
        assert list(point.GraphicData) == [51.5, 42.5]
        ref = point.ContentSequence[0].ReferencedSOPSequence[0]
        assert ref.ReferencedSOPInstanceUID == series[20].SOPInstanceUID
    else:
        assert scoords == []


TIMES = ("ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime")
CONTRIBUTED_AT = f"{tag_for_keyword('ContributionDateTime'):08X}"


def _undated(ds: Dataset) -> dict[str, Any]:
    """The SR as DICOM JSON without its creation date and time (they differ between runs)."""
    found: dict[str, Any] = ds.to_json_dict()
    for keyword in TIMES:
        found.pop(f"{tag_for_keyword(keyword):08X}", None)
    for item in found.get(f"{tag_for_keyword('ContributingEquipmentSequence'):08X}", {}).get(
        "Value", []
    ):
        item.pop(CONTRIBUTED_AT, None)
    return found


def test_the_thin_evidence_gives_the_same_sr_with_every_instance_referenced(
    series: list[Dataset],
) -> None:
    finding = _finding(True, series)
    thin = evidence(series)
    assert all("PixelData" not in ds for ds in thin)
    assert _undated(measurement_report(finding, thin)) == _undated(
        measurement_report(finding, series)
    )
    [study] = measurement_report(finding, thin).CurrentRequestedProcedureEvidenceSequence
    [listed] = study.ReferencedSeriesSequence
    assert [r.ReferencedSOPInstanceUID for r in listed.ReferencedSOPSequence] == [
        ds.SOPInstanceUID for ds in series
    ]
