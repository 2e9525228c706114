"""AI imaging findings (docs/ai-findings.md) -> OMOP `measurement` + MI-CDM `image_feature`.

A finding is an Observation tagged `urn:cdss:ai|finding`; its parts are read by component code
(system `urn:cdss:ai`), never by position. It becomes:

* one `measurement` row: the finding's concept (its SNOMED code), the calibrated probability
  as `value_as_number` (UCUM `1`), Present/Absent as `value_as_concept_id`;
* one `image_feature` row: the same finding concept, linked to that measurement through
  `image_feature_event_field_concept_id` = 1147330 (the CDM field concept of
  `measurement.measurement_id`, as MI-CDM uses it) and to the `image_occurrence` of the
  ImagingStudy in `derivedFrom` -- the series named by the `series-instance-uid` component
  when the CDW holds it, else the study's first series. `alg_system` is the registry's
  `<name>@<version>` (not free text), `alg_datetime` the shifted time the model ran.

The series lookup needs the CDW (the ImagingStudy's rows); without one (the inference path
maps in memory) the first series is used, whose id is derivable from the study id alone.
"""

from __future__ import annotations

from typing import Any, Protocol

from cdw import fhir
from cdw.maprun import Run

AI_SYSTEM = "urn:cdss:ai"
MEASUREMENT_FIELD = 1147330  # CDM field concept: measurement.measurement_id
ALGORITHM = 32882  # Type Concept "Standard algorithm from EHR": a model derived it
UNIT_ONE = "1"


class ImageIndex(Protocol):
    """Finds the CDW image_occurrence of a study's series (by its pseudonymised UID)."""

    def series(self, person_id: int, procedure_id: int, series_uid: str) -> int | None: ...


def is_finding(resource: dict[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(
        isinstance(t, dict) and t.get("system") == AI_SYSTEM and t.get("code") == "finding"
        for t in tags
    )


def _components(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for comp in res.get("component") or []:
        if not isinstance(comp, dict):
            continue
        for system, code in fhir.codings(comp.get("code")):
            if system == AI_SYSTEM:
                out.setdefault(code, comp)
    return out


def _study_id(res: dict[str, Any]) -> str:
    for ref in res.get("derivedFrom") or []:
        found = fhir.reference_id(ref, "ImagingStudy")
        if found:
            return found
    raise ValueError("AI finding without derivedFrom ImagingStudy")


def _image_occurrence(r: Run, study: str, series_uid: Any) -> int:
    first = r.m.pz.integer("image_occurrence", f"ImagingStudy/{study}#0")
    if r.m.images is None or not isinstance(series_uid, str) or not series_uid:
        return first
    procedure = r.m.pz.integer("procedure_occurrence", f"ImagingStudy/{study}#0")
    uid = f"2.25.{r.m.pz.integer('uid', series_uid.removeprefix('urn:oid:'))}"
    found = r.m.images.series(r.person_id, procedure, uid)
    return found if found is not None else first


def ai_finding(r: Run) -> None:
    when = r.when(r.res.get("effectiveDateTime"), r.res.get("issued"))
    if when is None:
        raise ValueError("AI finding without effectiveDateTime")
    study = _study_id(r.res)
    parts = _components(r.res)
    probability = (parts.get("probability") or {}).get("valueQuantity")
    if not isinstance(probability, dict) or fhir.number(probability.get("value")) is None:
        raise ValueError("AI finding without a probability component")
    found, code = r.concept("measurement", r.res.get("code"))
    present, present_code = r.concept("measurement", r.res.get("valueCodeableConcept"))
    unit = r.m.vocab.system("http://unitsofmeasure.org", UNIT_ONE)
    measurement_id = r.row_id("measurement", 0)
    r.add(
        "measurement",
        {
            "measurement_id": measurement_id,
            "person_id": r.person_id,
            "measurement_concept_id": found.concept_id,
            "measurement_date": when.date(),
            "measurement_datetime": when,
            "measurement_type_concept_id": ALGORITHM,
            "value_as_number": fhir.number(probability.get("value")),
            "value_as_concept_id": present.concept_id,
            "value_source_value": present_code,
            "unit_concept_id": unit.concept_id,
            "unit_source_value": UNIT_ONE,
            "measurement_source_value": code,
            "measurement_source_concept_id": found.source_concept_id,
            # The keys a lab measurement row has, so one executemany batch can hold both.
            "visit_occurrence_id": None,
            "operator_concept_id": None,
            "range_low": None,
            "range_high": None,
        },
    )
    model = (parts.get("model") or {}).get("valueString")
    series_uid = (parts.get("series-instance-uid") or {}).get("valueString")
    r.add(
        "image_feature",
        {
            "image_feature_id": r.row_id("image_feature", 0),
            "person_id": r.person_id,
            "image_occurrence_id": _image_occurrence(r, study, series_uid),
            "image_feature_event_field_concept_id": MEASUREMENT_FIELD,
            "image_feature_event_id": measurement_id,
            "image_feature_concept_id": found.concept_id,
            "image_feature_type_concept_id": ALGORITHM,
            "image_finding_concept_id": present.concept_id,
            "image_finding_id": measurement_id,
            "alg_system": str(model)[:255] if isinstance(model, str) else None,
            "alg_datetime": r.when(r.res.get("issued")),
        },
    )
