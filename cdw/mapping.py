"""FHIR R4 resource -> OMOP rows, pure given the pseudonymiser and the vocabulary.

Shared by the ETL (facade store -> CDW) and by the feature code's inference path (a hook's
prefetch -> the same rows in memory), which is what keeps training and inference from
drifting. Conventions follow the HL7 FHIR-to-OMOP IG: laboratory/vital-signs Observations
-> measurement, other Observations -> observation, type concept 32817 (EHR). Free text
(names, notes, sig, valueString, display) is never copied; identifiers become pseudonyms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from cdw import fhir, mapping_obs
from cdw.mapping_ai import ImageIndex
from cdw.maprun import EHR, MapResult, Run
from cdw.pseudonym import Pseudonymizer
from cdw.vocab import Vocabulary

GENDER = {"male": 8507, "female": 8532, "other": 44814653, "unknown": 8551}
VISIT = {"IMP": 9201, "AMB": 9202, "EMER": 9203, "OBSENC": 262, "VR": 722455, "HH": 581476}
VOID = {"entered-in-error", "cancelled"}


@dataclass
class Mapper:
    pz: Pseudonymizer
    vocab: Vocabulary
    birth_precision: Literal["year", "month"] = "year"
    images: ImageIndex | None = None
    """Resolves AI findings to their series' image_occurrence (the CDW); None: first series."""

    def map(self, resource: dict[str, Any]) -> MapResult:
        kind = resource.get("resourceType")
        handler = _HANDLERS.get(str(kind))
        out = MapResult()
        if handler is None or resource.get("status") in VOID:
            return out
        patient = str(resource.get("id")) if kind == "Patient" else fhir.subject_patient(resource)
        if not patient:
            out.error = "no resolvable Patient reference (unlinked?)"
            return out
        Run(self, resource, patient, out).go(handler)
        return out


def _patient(r: Run) -> None:
    born = fhir.parse_instant(r.res.get("birthDate"))
    if born is None:
        raise ValueError("Patient without birthDate")
    shifted = r.m.pz.shift_datetime(born, r.patient)
    gender = str(r.res.get("gender") or "")
    r.add(
        "person",
        {
            "person_id": r.person_id,
            "gender_concept_id": GENDER.get(gender, 0),
            "year_of_birth": shifted.year,
            "month_of_birth": shifted.month if r.m.birth_precision == "month" else None,
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "person_source_value": r.m.pz.token("person", r.patient),
            "gender_source_value": gender or None,
        },
    )
    died = r.when(r.res.get("deceasedDateTime"))
    if died is not None:
        r.add(
            "death",
            {
                "person_id": r.person_id,
                "death_date": died.date(),
                "death_datetime": died,
                "death_type_concept_id": EHR,
            },
        )


def _encounter(r: Run) -> None:
    period = r.res.get("period") or {}
    start = r.when(period.get("start"))
    if start is None:
        raise ValueError("Encounter without period.start")
    end = r.when(period.get("end")) or start
    cls = r.res.get("class") or {}
    code = cls.get("code") if isinstance(cls, dict) else None
    r.add(
        "visit_occurrence",
        {
            "visit_occurrence_id": r.row_id("visit_occurrence", 0),
            "person_id": r.person_id,
            "visit_concept_id": VISIT.get(str(code), 0),
            "visit_start_date": start.date(),
            "visit_start_datetime": start,
            "visit_end_date": end.date(),
            "visit_end_datetime": end,
            "visit_type_concept_id": EHR,
            "visit_source_value": code,
        },
    )


def _condition(r: Run) -> None:
    ver = fhir.codings(r.res.get("verificationStatus"))
    if any(code in ("entered-in-error", "refuted") for _, code in ver):
        return
    start = r.when(r.res.get("onsetDateTime"), r.res.get("recordedDate"))
    if start is None:
        raise ValueError("Condition without onset or recorded date")
    end = r.when(r.res.get("abatementDateTime"))
    found, code = r.concept("condition_occurrence", r.res.get("code"))
    r.add(
        "condition_occurrence",
        {
            "condition_occurrence_id": r.row_id("condition_occurrence", 0),
            "person_id": r.person_id,
            "condition_concept_id": found.concept_id,
            "condition_start_date": start.date(),
            "condition_start_datetime": start,
            "condition_end_date": end.date() if end else None,
            "condition_end_datetime": end,
            "condition_type_concept_id": EHR,
            "visit_occurrence_id": r.visit_id(),
            "condition_source_value": code,
            "condition_source_concept_id": found.source_concept_id,
        },
    )


def _medication(r: Run) -> None:
    start = r.when(r.res.get("authoredOn"))
    if start is None:
        raise ValueError("MedicationRequest without authoredOn")
    found, code = r.concept("drug_exposure", r.res.get("medicationCodeableConcept"))
    repeats = (r.res.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed")
    r.add(
        "drug_exposure",
        {
            "drug_exposure_id": r.row_id("drug_exposure", 0),
            "person_id": r.person_id,
            "drug_concept_id": found.concept_id,
            "drug_exposure_start_date": start.date(),
            "drug_exposure_start_datetime": start,
            "drug_exposure_end_date": start.date(),
            "drug_type_concept_id": EHR,
            "refills": repeats if isinstance(repeats, int) else None,
            "visit_occurrence_id": r.visit_id(),
            "drug_source_value": code,
            "drug_source_concept_id": found.source_concept_id,
        },
    )


_HANDLERS: dict[str, Callable[[Run], None]] = {
    "Patient": _patient,
    "Encounter": _encounter,
    "Condition": _condition,
    "MedicationRequest": _medication,
    **mapping_obs.HANDLERS,
}
