"""A synthetic patient's record as FHIR R4, shaped as the sync writes it into the facade.

The honest data path (simulators → adapters → sync → facade → ETL → CDW) costs ~0.3 s a
patient here; tests and benchmarks that need hundreds of patients in seconds build the same
record directly: the OpenEMR adapter's Patient (MRN identifier), smoking-status Observation
(SNOMED), problem-list Conditions (ICD-10-CM) and the SENAITE adapter's laboratory Observations
(LOINC from the adapters' own table, eGFR by CKD-EPI 2021 as the lab reports it). Only what the
feature set reads is produced. Equality of the features from this record and from the real
path is checked in tests/models/tabular (same cohort, both ways). A CT also gets the imaging
AI's finding Observation as the pipeline writes it (docs/ai-findings.md), with a probability
from the CNN's noise model (`models.tabular.synthetic_ai`), never the generator's nodule itself
(no PACS in that comparison; tests/cdw/test_cdw_features.py proves the AI features equal).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from adapters.base import MRN_SYSTEM
from adapters.senaite.loinc import LoincTable, load_table
from cds_hooks.clinical.renal import egfr_ckd_epi_2021
from models.tabular import synthetic_ai
from simulators.cohort.model import LabResult, SyntheticPatient
from simulators.cohort.openemr_writer import ICD10

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SMOKING_SNOMED = {
    "current": ("449868002", "Current every day smoker"),
    "former": ("8517006", "Former smoker"),
    "never": ("266919005", "Never smoker"),
}


@cache
def _table() -> LoincTable:
    return load_table()


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _lab(pid: str, oid: str, keyword: str, value: float, unit: str, when: str) -> dict[str, Any]:
    entry = _table().lookup(keyword, unit)
    if entry is None:
        raise KeyError(f"no LOINC for {keyword} in {unit}")
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [_concept(CATEGORY, "laboratory", "Laboratory")],
        "code": _concept(LOINC, entry.loinc, entry.display),
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }  # fmt: skip


def _condition(pid: str, cid: str, key: str, onset: date) -> dict[str, Any]:
    code, title = ICD10[key]
    return {
        "resourceType": "Condition", "id": cid,
        "clinicalStatus": _concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
        ),
        "code": _concept(ICD10CM, code, title), "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": f"{onset.isoformat()}T00:00:00+00:00",
    }  # fmt: skip


def _study_uid(pid: str) -> str:
    return f"urn:oid:2.25.{int(hashlib.sha256(pid.encode()).hexdigest()[:24], 16)}"


AI = "urn:cdss:ai"
AI_MODEL = "lung-nodule-ct@1"


def _ai_component(code: str, **value: Any) -> dict[str, Any]:
    return {"code": {"coding": [{"system": AI, "code": code}], "text": code}, **value}


def ai_finding(p: SyntheticPatient, pid: str) -> dict[str, Any]:
    """The imaging AI's finding on the patient's CT (tag, components by code, derivedFrom);
    no location components: the tabular features read only probability and Present/Absent."""
    assert p.ct is not None
    prob = round(synthetic_ai.probability(p.ct.nodule, pid), 4)
    present = prob >= synthetic_ai.THRESHOLD
    value = ("52101004", "Present") if present else ("2667000", "Absent")
    when = p.ct.performed.strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = (p.ct.performed + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "resourceType": "Observation", "id": f"{pid}-ai", "status": "final",
        "meta": {"tag": [{"system": AI, "code": "finding"}]},
        "category": [_concept(CATEGORY, "imaging", "Imaging")],
        "code": _concept(SCT, "786838002", "Nodule of lung"),
        "valueCodeableConcept": _concept(SCT, *value),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when, "issued": issued,
        "derivedFrom": [{"reference": f"ImagingStudy/{pid}-ct"}],
        "device": {"display": AI_MODEL},
        "component": [
            _ai_component("probability", valueQuantity={
                "value": prob, "unit": "1", "system": UCUM, "code": "1"}),
            _ai_component("model", valueString=AI_MODEL),
            _ai_component("series-instance-uid", valueString=f"{_study_uid(pid)[8:]}.1"),
        ],
    }  # fmt: skip


def patient_record(p: SyntheticPatient, pid: str) -> list[dict[str, Any]]:
    """The patient's FHIR resources (Patient first) with ids derived from `pid`."""
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "gender": p.sex,
            "birthDate": p.birth_date.isoformat(),
            "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": p.mrn}],
            "name": [{"family": p.family, "given": [p.given]}],
        }
    ]
    first = min((lab.taken for lab in p.labs), default=None)
    since = first.date() if first else p.birth_date
    code, display = SMOKING_SNOMED[p.smoking]
    out.append(
        {
            "resourceType": "Observation",
            "id": f"{pid}-smoking",
            "status": "final",
            "category": [_concept(CATEGORY, "social-history", "Social History")],
            "code": _concept(LOINC, "72166-2", "Tobacco smoking status NHIS"),
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": f"{since.isoformat()}T00:00:00Z",
            "valueCodeableConcept": _concept(SCT, code, display),
        }
    )
    for i, condition in enumerate(p.conditions):
        out.append(_condition(pid, f"{pid}-cond-{i}", condition, since))
    if p.cancer and p.diagnosis_date is not None:
        out.append(_condition(pid, f"{pid}-cancer", "lung-cancer", p.diagnosis_date))
    # One lab sample per sampling time, as the SENAITE writer files them: two panels drawn at
    # the same instant become one sample whose later value per analyte wins.
    panels: dict[datetime, dict[str, LabResult]] = {}
    for lab in p.labs:
        panels.setdefault(lab.taken, {})[lab.keyword] = lab
    for n, (taken, labs) in enumerate(sorted(panels.items())):
        when = taken.strftime("%Y-%m-%dT%H:%M:%SZ")
        for lab in labs.values():
            out.append(
                _lab(pid, f"{pid}-{n}-{lab.keyword}", lab.keyword, lab.value, lab.unit, when)
            )
        if "CREA" in labs:
            egfr = round(egfr_ckd_epi_2021(labs["CREA"].value, p.age_at(taken.date()), p.sex))  # type: ignore[arg-type]
            out.append(_lab(pid, f"{pid}-{n}-EGFR", "EGFR", egfr, "mL/min/{1.73_m2}", when))
    if p.ct is not None:
        out.append(
            {
                "resourceType": "ImagingStudy",
                "id": f"{pid}-ct",
                "status": "available",
                "subject": {"reference": f"Patient/{pid}"},
                "identifier": [{"system": "urn:dicom:uid", "value": _study_uid(pid)}],
                "started": p.ct.performed.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "modality": [{"system": DCM, "code": "CT"}],
                "series": [
                    {
                        "uid": f"{_study_uid(pid)[8:]}.1",
                        "numberOfInstances": 1,
                        "modality": {"system": DCM, "code": "CT"},
                    }
                ],
            }
        )
        out.append(ai_finding(p, pid))
    return out
