"""Observation, ServiceRequest/Procedure, Specimen and ImagingStudy -> OMOP rows.

Observation values: numbers (with comparator -> operator concept, unit, reference range) and
codes are kept; `valueString` is free text and is dropped. Panels that only group members
(no value, no components) produce no row. DICOM UIDs are identifiers too: they become
`2.25.<int>` UIDs derived from the key, which the hub (holding the key) can recompute to find
the images, and nobody else can.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdw import fhir
from cdw.mapping_ai import ai_finding, is_finding
from cdw.maprun import EHR, Run

# OMOP "Meas Value Operator" concepts (SNOMED), checked against public OMOP ETLs (the MIMIC-IV
# OMOP lab mapping and OHDSI ETL code use the same five ids).
OPERATOR = {"<": 4171756, "<=": 4171754, "=": 4172703, ">=": 4171755, ">": 4172704}
MEASUREMENT_CATEGORIES = {"laboratory", "vital-signs"}


def _quantity_fields(r: Run, table: str, q: Any) -> dict[str, Any]:
    if not isinstance(q, dict):
        return {}
    unit = q.get("code") or q.get("unit")
    found = r.m.vocab.system(q.get("system") or "http://unitsofmeasure.org", unit)
    if unit and not found.concept_id:
        r.out.unmapped.append((table, "UCUM", str(unit)))
    return {
        "value_as_number": fhir.number(q.get("value")),
        "operator_concept_id": OPERATOR.get(str(q.get("comparator") or "")),
        "unit_concept_id": found.concept_id if unit else None,
        "unit_source_value": str(unit)[:50] if unit else None,
    }


def _range(res: dict[str, Any]) -> dict[str, Any]:
    ranges = res.get("referenceRange") or []
    first = ranges[0] if ranges and isinstance(ranges[0], dict) else {}
    return {
        "range_low": fhir.number((first.get("low") or {}).get("value")),
        "range_high": fhir.number((first.get("high") or {}).get("value")),
    }


def _value_concept(r: Run, table: str, part: dict[str, Any]) -> tuple[int | None, str | None]:
    if "valueCodeableConcept" not in part:
        return None, None
    found, code = r.concept(table, part["valueCodeableConcept"])
    return found.concept_id, code


def _observation(r: Run) -> None:
    if is_finding(r.res):
        ai_finding(r)
        return
    when = r.when(
        r.res.get("effectiveDateTime"),
        (r.res.get("effectivePeriod") or {}).get("start"),
        r.res.get("issued"),
    )
    if when is None:
        raise ValueError("Observation without effective time")
    table = "measurement" if fhir.categories(r.res) & MEASUREMENT_CATEGORIES else "observation"
    parts = [c for c in r.res.get("component") or [] if isinstance(c, dict)] or [r.res]
    for n, part in enumerate(parts):
        has_value = "valueQuantity" in part or "valueCodeableConcept" in part
        if not has_value:
            continue
        found, code = r.concept(table, part.get("code"))
        value_concept, value_code = _value_concept(r, table, part)
        row: dict[str, Any] = {
            "person_id": r.person_id,
            "visit_occurrence_id": r.visit_id(),
            "value_as_concept_id": value_concept,
            "value_source_value": value_code,
            **_quantity_fields(r, table, part.get("valueQuantity")),
        }
        if table == "measurement":
            row.update(
                measurement_id=r.row_id(table, n),
                measurement_concept_id=found.concept_id,
                measurement_date=when.date(),
                measurement_datetime=when,
                measurement_type_concept_id=EHR,
                measurement_source_value=code,
                measurement_source_concept_id=found.source_concept_id,
                **_range(r.res),
            )
        else:
            row.pop("operator_concept_id", None)
            row.update(
                observation_id=r.row_id(table, n),
                observation_concept_id=found.concept_id,
                observation_date=when.date(),
                observation_datetime=when,
                observation_type_concept_id=EHR,
                observation_source_value=code,
                observation_source_concept_id=found.source_concept_id,
            )
        r.add(table, row)


def _procedure_row(r: Run, concept: Any, when: Any) -> int:
    found, code = r.concept("procedure_occurrence", concept)
    row_id = r.row_id("procedure_occurrence", 0)
    r.add(
        "procedure_occurrence",
        {
            "procedure_occurrence_id": row_id,
            "person_id": r.person_id,
            "procedure_concept_id": found.concept_id,
            "procedure_date": when.date(),
            "procedure_datetime": when,
            "procedure_type_concept_id": EHR,
            "visit_occurrence_id": r.visit_id(),
            "procedure_source_value": code,
            "procedure_source_concept_id": found.source_concept_id,
        },
    )
    return row_id


def _service_request(r: Run) -> None:
    when = r.when(r.res.get("occurrenceDateTime"), r.res.get("authoredOn"))
    if when is None:
        raise ValueError("ServiceRequest without a date")
    _procedure_row(r, r.res.get("code"), when)


def _procedure(r: Run) -> None:
    when = r.when(r.res.get("performedDateTime"), (r.res.get("performedPeriod") or {}).get("start"))
    if when is None:
        raise ValueError("Procedure without a performed date")
    _procedure_row(r, r.res.get("code"), when)


def _specimen(r: Run) -> None:
    collection = r.res.get("collection") or {}
    when = r.when(collection.get("collectedDateTime"), r.res.get("receivedTime"))
    if when is None:
        raise ValueError("Specimen without collection or received time")
    found, code = r.concept("specimen", r.res.get("type"))
    quantity = collection.get("quantity") or {}
    accession = (r.res.get("accessionIdentifier") or {}).get("value")
    r.add(
        "specimen",
        {
            "specimen_id": r.row_id("specimen", 0),
            "person_id": r.person_id,
            "specimen_concept_id": found.concept_id,
            "specimen_type_concept_id": EHR,
            "specimen_date": when.date(),
            "specimen_datetime": when,
            "quantity": fhir.number(quantity.get("value")),
            "unit_source_value": quantity.get("code"),
            "specimen_source_id": r.m.pz.token("accession", str(accession)) if accession else None,
            "specimen_source_value": code,
        },
    )


def _uid(r: Run, uid: str) -> str:
    return f"2.25.{r.m.pz.integer('uid', uid.removeprefix('urn:oid:'))}"


def _imaging_study(r: Run) -> None:
    when = r.when(r.res.get("started"))
    if when is None:
        raise ValueError("ImagingStudy without started")
    study = next(
        (
            i.get("value")
            for i in r.res.get("identifier") or []
            if i.get("system") == "urn:dicom:uid"
        ),
        None,
    )
    if not study:
        raise ValueError("ImagingStudy without a DICOM study UID")
    codes = r.res.get("procedureCode") or []
    modalities = r.res.get("modality") or []
    proc = _procedure_row(r, codes[0] if codes else (modalities[0] if modalities else None), when)
    for n, series in enumerate(s for s in r.res.get("series") or [] if isinstance(s, dict)):
        modality, _ = r.concept("image_occurrence", series.get("modality"))
        site, _ = r.concept("image_occurrence", series.get("bodySite"))
        r.add(
            "image_occurrence",
            {
                "image_occurrence_id": r.row_id("image_occurrence", n),
                "person_id": r.person_id,
                "procedure_occurrence_id": proc,
                "visit_occurrence_id": r.visit_id(),
                "anatomic_site_concept_id": site.concept_id,
                "image_occurrence_date": when.date(),
                "image_study_uid": _uid(r, str(study)),
                "image_series_uid": _uid(r, str(series.get("uid") or n)),
                "modality_concept_id": modality.concept_id,
            },
        )


HANDLERS: dict[str, Callable[[Run], None]] = {
    "Observation": _observation,
    "ServiceRequest": _service_request,
    "Procedure": _procedure,
    "Specimen": _specimen,
    "ImagingStudy": _imaging_study,
}
