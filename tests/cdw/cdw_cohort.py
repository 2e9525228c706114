"""A small synthetic cohort written straight into the facade's store, shaped like the sync's
output (OpenEMR Patient/Encounter/Condition/MedicationRequest/vitals/smoking, SENAITE lab
Observations/ServiceRequest/Specimen, Orthanc ImagingStudy), with direct identifiers that
must never reach the CDW."""

from __future__ import annotations

from typing import Any

from fhir_facade.store.sql_store import SqlStore

KEY = b"test-cdw-pseudonym-key-0123456789"
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _cc(system: str, code: str, display: str = "") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display or code}]}


def _mmhg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}


def _lab(
    pid: str, oid: str, loinc: str, value: float, unit: str, when: str, **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [_cc(CAT, "laboratory")], "code": _cc(LOINC, loinc),
        "subject": {"reference": f"Patient/{pid}", "display": "Ada Lovelace"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit, **extra},
        "referenceRange": [{"low": {"value": 0.6}, "high": {"value": 1.3}}],
    }  # fmt: skip


def patient_resources(i: int) -> list[dict[str, Any]]:
    """One patient's resources; `i` varies ids, values and dates."""
    pid = f"pat-{i}"
    ref = {"reference": f"Patient/{pid}", "display": f"Ada{i} Lovelace{i}"}
    year = 1950 + i
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient", "id": pid, "gender": "female" if i % 2 else "male",
            "birthDate": f"{year}-07-03",
            "name": [{"family": f"Lovelace{i}", "given": [f"Ada{i}"]}],
            "identifier": [{"system": "urn:cdss:mrn", "value": f"MRN-90{i:03d}"}],
            "telecom": [{"system": "phone", "value": f"+44 20 7946 0{i:03d}"}],
            "address": [{"line": [f"{i} Crona Wall"], "city": "Boston", "postalCode": "02215"}],
            "text": {"status": "generated", "div": f"<div>Ada{i} Lovelace{i}</div>"},
        },
        {
            "resourceType": "Encounter", "id": f"enc-{i}", "status": "finished",
            "class": {"code": "AMB"}, "subject": ref,
            "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T10:00:00Z"},
        },
        {
            "resourceType": "Condition", "id": f"cond-{i}", "subject": ref,
            "code": _cc("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"),
            "onsetDateTime": "2019-05-01T00:00:00Z",
            "encounter": {"reference": f"Encounter/enc-{i}"},
            "note": [{"text": "patient Ada lives at Crona Wall"}],
        },
        {
            "resourceType": "Condition", "id": f"cond-x-{i}", "subject": ref,
            "code": _cc("http://hl7.org/fhir/sid/icd-10-cm", "Z99.99"),
            "onsetDateTime": "2020-01-01T00:00:00Z",
        },
        {
            "resourceType": "MedicationRequest", "id": f"med-{i}", "status": "active",
            "intent": "order", "subject": ref, "authoredOn": "2019-06-01T00:00:00Z",
            "medicationCodeableConcept": _cc(RXNORM, "860975"),
            "dosageInstruction": [{"text": "one tablet twice daily, call Ada on her phone"}],
        },
        {
            "resourceType": "Observation", "id": f"smk-{i}", "status": "final",
            "category": [_cc(CAT, "social-history")], "code": _cc(LOINC, "72166-2"),
            "subject": ref, "effectiveDateTime": "2023-01-01T00:00:00Z",
            "valueCodeableConcept": _cc(SCT, "449868002" if i % 3 else "8517006"),
        },
        {
            "resourceType": "Observation", "id": f"bp-{i}", "status": "final",
            "category": [_cc(CAT, "vital-signs")], "code": _cc(LOINC, "85354-9"),
            "subject": ref, "effectiveDateTime": "2024-03-01T09:10:00Z",
            "component": [
                {"code": _cc(LOINC, "8480-6"), "valueQuantity": _mmhg(120 + i)},
                {"code": _cc(LOINC, "8462-4"), "valueQuantity": _mmhg(80)},
            ],
        },
        {
            "resourceType": "ServiceRequest", "id": f"sr-{i}", "status": "completed",
            "intent": "order", "subject": ref, "authoredOn": "2024-02-01T08:00:00Z",
            "code": _cc(LOINC, "2160-0"), "requester": {"display": "Grace Hopper"},
        },
        {
            "resourceType": "Specimen", "id": f"spec-{i}", "status": "available", "subject": ref,
            "accessionIdentifier": {"system": "urn:cdss:senaite:sample-id",
                                    "value": f"SER-9{i:03d}"},
            "type": _cc(SCT, "119364003"),
            "collection": {"collectedDateTime": "2024-02-01T07:45:00Z"},
        },
        {
            "resourceType": "ImagingStudy", "id": f"img-{i}", "status": "available", "subject": ref,
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:1.2.826.0.1.{i}"}],
            "started": "2024-01-15T10:15:00+01:00", "description": "CT CHEST for Ada",
            "modality": [{"system": DCM, "code": "CT"}],
            "series": [{"uid": f"1.2.826.0.1.{i}.2", "modality": {"system": DCM, "code": "CT"},
                        "numberOfInstances": 2}],
        },
    ]  # fmt: skip
    for n, (when, crea) in enumerate(
        [
            ("2022-01-10T08:00:00Z", 1.0),
            ("2023-01-10T08:00:00Z", 1.2),
            ("2024-02-01T07:45:00Z", 1.4 + i / 10),
        ]
    ):
        out.append(_lab(pid, f"crea-{i}-{n}", "2160-0", crea, "mg/dL", when))
    out.append(
        _lab(
            pid,
            f"egfr-{i}",
            "98979-8",
            90,
            "mL/min/{1.73_m2}",
            "2024-02-01T07:45:00Z",
            comparator=">",
        )
    )
    out.append(_lab(pid, f"hgb-{i}", "718-7", 13.5, "g/dL", "2024-02-01T07:45:00Z"))
    return out


def write_cohort(url: str, patients: int) -> list[list[dict[str, Any]]]:
    store = SqlStore(url)
    cohort = [patient_resources(i) for i in range(patients)]
    try:
        with store.unit() as unit:
            for resources in cohort:
                for resource in resources:
                    unit.update(resource)
    finally:
        store.close()
    return cohort
