"""Synthetic FHIR records and hook requests, for the benchmark, the tests and demos.

Shared so that the benchmark measures the same shapes the tests prove correct. Codes are the
vetted ones of docs/clinical-reference.md (LOINC 24628-0 CT chest with IV contrast, 2160-0 serum
creatinine, 98979-8 eGFR CKD-EPI 2021, 4548-4 HbA1c; SNOMED 426722004 iodinated contrast media;
RxNorm 6809 metformin).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

LOINC = "http://loinc.org"
CT_CHEST_CONTRAST = ("24628-0", "CT Chest W contrast IV")
CT_CHEST_PLAIN = ("29252-4", "CT Chest WO contrast")
MR_BRAIN_CONTRAST = ("24589-4", "MR Brain W contrast IV")
HBA1C = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")


def iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def patient(pid: str, *, birth_date: str = "1950-01-01", gender: str = "female") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth_date, "gender": gender}


def observation(
    oid: str, pid: str, code: tuple[str, str], value: float, unit: str, when: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": iso(when),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
        **extra,
    }


def egfr(oid: str, pid: str, value: float, when: datetime) -> dict[str, Any]:
    code = ("98979-8", "eGFR CKD-EPI 2021")
    return observation(oid, pid, code, value, "mL/min/{1.73_m2}", when)


def creatinine(oid: str, pid: str, mg_dl: float, when: datetime) -> dict[str, Any]:
    code = ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma")
    return observation(oid, pid, code, mg_dl, "mg/dL", when)


def service_request(
    sid: str,
    pid: str,
    code: tuple[str, str],
    *,
    status: str = "draft",
    authored: datetime | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": sid,
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if authored is not None:
        out["authoredOn"] = iso(authored)
    return out


def imaging_study(
    sid: str, pid: str, when: datetime, *, modality: str = "CT", description: str = "CT Chest"
) -> dict[str, Any]:
    uid = f"1.2.826.0.1.3680043.8.498.{int(hashlib.sha1(sid.encode()).hexdigest()[:16], 16)}"
    return {
        "resourceType": "ImagingStudy",
        "id": sid,
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}],
        "status": "available",
        "subject": {"reference": f"Patient/{pid}"},
        "started": iso(when),
        "description": description,
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}],
        "series": [
            {
                "uid": f"{uid}.1",
                "modality": {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": modality,
                },
                "description": description,
            }
        ],
    }


def contrast_allergy(aid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "type": "allergy",
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "426722004",
                    "display": "Iodinated contrast media (substance)",
                }
            ]
        },
        "patient": {"reference": f"Patient/{pid}"},
    }


def metformin(mid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "6809",
                    "display": "metformin",
                }
            ]
        },
        "subject": {"reference": f"Patient/{pid}"},
    }


def bundle(resources: Iterable[Mapping[str, Any]], kind: str = "searchset") -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    entries = [{"resource": dict(r)} for r in resources]
    if entries:
        out["entry"] = entries
    return out


def order_request(
    hook: str,
    pid: str,
    drafts: Sequence[Mapping[str, Any]],
    *,
    prefetch: Mapping[str, Any] | None = None,
    user: str = "Practitioner/example",
    selections: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": user,
        "patientId": pid,
        "draftOrders": bundle(drafts, "collection"),
    }
    if hook == "order-select":
        context["selections"] = selections or [f"{d['resourceType']}/{d['id']}" for d in drafts]
    out: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        **extra,
    }
    if prefetch is not None:
        out["prefetch"] = dict(prefetch)
    return out


def days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)
