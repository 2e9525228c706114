"""Feature inputs from one patient's FHIR resources (the inference path of `cdw.features`).

The resources go through the ETL's own mapper with the hub's key, so they land in the same
pseudonymised frame and rows as the CDW; the aggregation below mirrors `cdw.features_sql`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Literal

from cdw.features import (
    DAYS_PER_YEAR,
    SMOKING_LOINC,
    FeatureRow,
    Inputs,
    LabStats,
    assemble,
    lab_codes,
)
from cdw.features_ai import ai_from_rows
from cdw.mapping import Mapper
from cdw.pseudonym import Pseudonymizer
from cdw.vocab import Vocabulary

_FIRST = datetime.min


def map_patient(
    resources: Iterable[dict[str, Any]],
    pz: Pseudonymizer,
    vocab: Vocabulary | None = None,
    birth_precision: Literal["year", "month"] = "year",
) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """(patient id, OMOP rows by table) for one patient's resources."""
    mapper = Mapper(pz, vocab or Vocabulary(None), birth_precision)
    rows: dict[str, list[dict[str, Any]]] = {}
    patient: str | None = None
    for resource in resources:
        if resource.get("resourceType") == "Patient":
            patient = str(resource["id"])
        for table, found in mapper.map(resource).rows.items():
            rows.setdefault(table, []).extend(found)
    if patient is None:
        raise ValueError("no Patient resource among the patient's resources")
    return patient, rows


def _labs(rows: list[dict[str, Any]], index_date: date) -> dict[str, LabStats]:
    codes = set(lab_codes())
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if (
            r["measurement_source_value"] in codes
            and r["measurement_date"] <= index_date
            and r.get("value_as_number") is not None
        ):
            grouped.setdefault(r["measurement_source_value"], []).append(r)
    out: dict[str, LabStats] = {}
    for code, found in grouped.items():
        xs = [(r["measurement_date"] - index_date).days / DAYS_PER_YEAR for r in found]
        ys = [float(r["value_as_number"]) for r in found]
        latest = max(
            found,
            key=lambda r: (
                r["measurement_date"],
                r.get("measurement_datetime") or _FIRST,
                r["measurement_id"],
            ),
        )
        out[code] = LabStats(
            len(found),
            sum(xs),
            sum(ys),
            sum(x * y for x, y in zip(xs, ys, strict=True)),
            sum(x * x for x in xs),
            float(latest["value_as_number"]),
        )
    return out


def inputs_from_rows(rows: dict[str, list[dict[str, Any]]], index_date: date) -> Inputs:
    people = rows.get("person", [])
    smoking = [
        r
        for r in rows.get("observation", [])
        if r["observation_source_value"] == SMOKING_LOINC and r["observation_date"] <= index_date
    ]
    latest_smoking = max(
        smoking,
        key=lambda r: (
            r["observation_date"],
            r.get("observation_datetime") or _FIRST,
            r["observation_id"],
        ),
        default=None,
    )
    studies = {
        r["image_study_uid"]
        for r in rows.get("image_occurrence", [])
        if r["image_occurrence_date"] <= index_date
    }
    concepts = frozenset(
        int(r["condition_concept_id"])
        for r in rows.get("condition_occurrence", [])
        if r["condition_start_date"] <= index_date
    )
    return Inputs(
        people[0]["year_of_birth"] if people else None,
        people[0]["gender_concept_id"] if people else None,
        latest_smoking["value_source_value"] if latest_smoking else None,
        _labs(rows.get("measurement", []), index_date),
        len(studies),
        concepts,
        ai_from_rows(rows.get("measurement", []), index_date),
    )


def features_from_fhir(
    resources: Iterable[dict[str, Any]],
    index_date: date,
    pz: Pseudonymizer,
    vocab: Vocabulary | None = None,
) -> FeatureRow:
    """The feature row of a live patient at a real index date; the row's `index_date` is in
    the CDW frame, as a training row's would be."""
    patient, rows = map_patient(resources, pz, vocab)
    shifted = pz.shift_date(index_date, patient)
    return assemble(pz.person_id(patient), shifted, inputs_from_rows(rows, shifted))
