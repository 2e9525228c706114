"""The imaging finding as FHIR R4 resources, exactly as docs/ai-findings.md specifies.

Pure mapping (no I/O): one Observation (the finding, with the model version as a
contained Device) and one DiagnosticReport per study x model version. Ids derive from the
report's identifier, so a re-run (or a second worker after a lost lease) updates the same
resources instead of adding copies.
Codes: SNOMED CT 786838002 |Nodule of lung| (synonym "Pulmonary nodule") for the finding,
52101004 |Present| / 2667000 |Absent| for its value; LOINC 18748-4 (Diagnostic imaging study)
for the report; v2-0074 RAD for its category.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from models.imaging.infer import Finding

AI = "urn:cdss:ai"
REPORT_ID_SYSTEM = "urn:cdss:ai-report"
SNOMED = "http://snomed.info/sct"
FINDING_CODE = {"system": SNOMED, "code": "786838002", "display": "Nodule of lung"}
PRESENT = {"system": SNOMED, "code": "52101004", "display": "Present"}
ABSENT = {"system": SNOMED, "code": "2667000", "display": "Absent"}
REPORT_CODE = {
    "system": "http://loinc.org",
    "code": "18748-4",
    "display": "Diagnostic imaging study",
}
RAD = {
    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
    "code": "RAD",
    "display": "Radiology",
}
IMAGING = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "imaging",
    "display": "Imaging",
}


@dataclass(frozen=True, slots=True)
class StudyContext:
    """What the facade knows of the study the finding is about."""

    study_uid: str
    imaging_study_id: str
    patient: str | None  # "Patient/<id>" or None when the study is not linked yet
    effective: str | None  # the study's start (ImagingStudy.started)
    issued: str  # when the model ran (instant)


def _id(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _split(model: str) -> tuple[str, str]:
    name, _, version = model.partition("@")
    return name, version


def device(model: str) -> dict[str, Any]:
    """The model as a Device, contained in the Observation (the facade serves no Device type)."""
    name, version = _split(model)
    return {
        "resourceType": "Device",
        "id": "model",
        "meta": {"tag": [{"system": AI, "code": "model"}]},
        "status": "active",
        "deviceName": [{"name": name, "type": "model-name"}],
        "type": {"text": "AI imaging model (software)"},
        "version": [{"value": version}],
    }


def _component(code: str, **value: Any) -> dict[str, Any]:
    return {"code": {"coding": [{"system": AI, "code": code}], "text": code}, **value}


def _mm(value: float) -> dict[str, Any]:
    return {
        "value": round(value, 1),
        "unit": "mm",
        "system": "http://unitsofmeasure.org",
        "code": "mm",
    }


def conclusion(finding: Finding) -> str:
    name, version = _split(finding.model)
    where = ""
    if finding.present and finding.centre_mm is not None:
        x, y, z = finding.centre_mm
        where = f" at ({x:.0f}, {y:.0f}, {z:.0f}) mm LPS, slice {(finding.slice_index or 0) + 1}"
    verdict = "Pulmonary nodule present" if finding.present else "No pulmonary nodule found"
    return (
        f"{verdict} (AI probability {finding.probability:.2f}){where}; "
        f"model {name} version {version}."
    )


def observation(finding: Finding, ctx: StudyContext, report_key: str) -> dict[str, Any]:
    components = [
        _component(
            "probability",
            valueQuantity={
                "value": round(finding.probability, 4),
                "unit": "1",
                "system": "http://unitsofmeasure.org",
                "code": "1",
            },
        ),
        _component("model", valueString=finding.model),
        _component("series-instance-uid", valueString=finding.series_uid),
    ]
    if finding.present and finding.centre_mm is not None:
        x, y, z = finding.centre_mm
        components += [
            _component("sop-instance-uid", valueString=finding.sop_uid),
            _component("location-x", valueQuantity=_mm(x)),
            _component("location-y", valueQuantity=_mm(y)),
            _component("location-z", valueQuantity=_mm(z)),
            _component("pixel-row", valueInteger=finding.pixel_row),
            _component("pixel-column", valueInteger=finding.pixel_column),
        ]
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id("ai-finding", report_key),
        "meta": {"tag": [{"system": AI, "code": "finding"}]},
        "status": "final",
        "category": [{"coding": [IMAGING]}],
        "code": {"coding": [FINDING_CODE], "text": "Pulmonary nodule (AI)"},
        "valueCodeableConcept": {
            "coding": [PRESENT if finding.present else ABSENT],
            "text": "Present" if finding.present else "Absent",
        },
        "derivedFrom": [{"reference": f"ImagingStudy/{ctx.imaging_study_id}"}],
        "contained": [device(finding.model)],
        "device": {"reference": "#model", "display": finding.model},
        "issued": ctx.issued,
        "component": components,
    }
    if ctx.patient:
        obs["subject"] = {"reference": ctx.patient}
    if ctx.effective:
        obs["effectiveDateTime"] = ctx.effective
    return obs


def resources(finding: Finding, ctx: StudyContext) -> list[dict[str, Any]]:
    """Observation, DiagnosticReport, in the order they must be written."""
    name, version = _split(finding.model)
    report_key = f"{ctx.study_uid}|{name}|{version}"
    obs = observation(finding, ctx, report_key)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": _id("ai-report", report_key),
        "meta": {"tag": [{"system": AI, "code": "report"}]},
        "identifier": [{"system": REPORT_ID_SYSTEM, "value": report_key}],
        "status": "final",
        "category": [{"coding": [RAD]}],
        "code": {"coding": [REPORT_CODE], "text": "AI chest CT nodule analysis"},
        "imagingStudy": [{"reference": f"ImagingStudy/{ctx.imaging_study_id}"}],
        "result": [{"reference": f"Observation/{obs['id']}"}],
        "issued": ctx.issued,
        "conclusion": conclusion(finding),
    }
    if ctx.patient:
        report["subject"] = {"reference": ctx.patient}
    if ctx.effective:
        report["effectiveDateTime"] = ctx.effective
    return [obs, report]
