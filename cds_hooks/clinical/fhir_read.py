"""Tolerant readers for the few FHIR R4 JSON elements the clinical rules need.

Why: the CDS hot path works on plain prefetch dicts (ARCHITECTURE.md §3.2: no model validation
on the way in), and source data is read leniently (§5: "log and count deviations"). Every reader
here returns ``None`` or an empty result for a missing or malformed element instead of raising;
callers log what they skip.

Date handling follows the R4 ``dateTime`` grammar (https://hl7.org/fhir/R4/datatypes.html#dateTime):
``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or a full time with a zone. A partial date is read as its
first instant; a time without a zone is read as UTC (R4 requires a zone when a time is given).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"

_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def as_mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty mapping."""
    if type(value) is dict:  # what parsed JSON holds: skips the (slow) ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def as_list(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty list (strings are not arrays)."""
    if type(value) is list:
        return value[:]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


def text(value: object) -> str | None:
    """A non-empty stripped string, or ``None``."""
    if isinstance(value, str):
        return value.strip() or None
    return None


def codings(concept: object) -> Iterator[tuple[str, str, str]]:
    """``(system, code, display)`` for each well-formed coding of a CodeableConcept or Coding."""
    concept = as_mapping(concept)
    items = as_list(concept.get("coding")) if "coding" in concept else [concept]
    for item in items:
        coding = as_mapping(item)
        code = coding.get("code")
        if isinstance(code, str):  # text(), inlined: this is the rules' hottest loop
            code = code.strip()
            if code:
                system, display = coding.get("system"), coding.get("display")
                system = system.strip() if isinstance(system, str) else ""
                display = display.strip() if isinstance(display, str) else ""
                yield system, code, display


def concept_text(concept: object) -> str:
    """All human-readable text of a CodeableConcept (``text`` plus coding displays), lower-cased."""
    concept = as_mapping(concept)
    parts = [text(concept.get("text")) or ""]
    parts += [display for _, _, display in codings(concept)]
    return " ".join(p for p in parts if p).lower()


def coded_status(concept: object) -> str | None:
    """The first code of a status CodeableConcept (e.g. AllergyIntolerance.clinicalStatus)."""
    for _, code, _ in codings(concept):
        return code.lower()
    return None


def parse_datetime(value: object) -> datetime | None:
    """An aware datetime for an R4 ``date``/``dateTime``/``instant`` string, else ``None``."""
    raw = text(value)
    match = _DATETIME.match(raw) if raw else None
    if match is None:
        return None
    y, m, d, hh, mm, ss, frac, tz = match.groups()
    try:
        stamp = datetime(
            int(y),
            int(m or 1),
            int(d or 1),
            int(hh or 0),
            int(mm or 0),
            int(ss or 0),
            int(frac[:6].ljust(6, "0")) if frac else 0,
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if tz and tz != "Z":
        try:  # an offset past ±24:00 (e.g. +25:00) breaks the R4 grammar: not a date at all
            stamp = datetime.fromisoformat(stamp.replace(tzinfo=None).isoformat() + tz)
        except ValueError:
            return None
        return stamp.astimezone(UTC)
    return stamp  # already UTC


def parse_date(value: object) -> date | None:
    """The calendar date of an R4 ``date`` (e.g. Patient.birthDate), else ``None``."""
    stamp = parse_datetime(value)
    return stamp.date() if stamp else None


def aware(now: datetime) -> datetime:
    """``now`` as an aware UTC datetime (a naive value is taken to be UTC)."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def effective_time(resource: Mapping[str, Any]) -> datetime | None:
    """When an Observation applies: effective[x], else ``issued``."""
    period = as_mapping(resource.get("effectivePeriod"))
    for candidate in (
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        period.get("start"),
        period.get("end"),
        resource.get("issued"),
    ):
        stamp = parse_datetime(candidate)
        if stamp is not None:
            return stamp
    return None


def request_time(resource: Mapping[str, Any]) -> datetime | None:
    """When a ServiceRequest is for: occurrence[x], else ``authoredOn``."""
    period = as_mapping(resource.get("occurrencePeriod"))
    for candidate in (
        resource.get("occurrenceDateTime"),
        period.get("start"),
        resource.get("authoredOn"),
    ):
        stamp = parse_datetime(candidate)
        if stamp is not None:
            return stamp
    return None


def quantity(resource: Mapping[str, Any]) -> tuple[float, str, str] | None:
    """``(value, unit, comparator)`` of valueQuantity; the UCUM code is preferred to the display.

    ``comparator`` is ``""`` for an exact value, else one of ``<``, ``<=``, ``>=``, ``>`` (e.g. an
    eGFR reported as ">90").
    """
    qty = as_mapping(resource.get("valueQuantity"))
    value = qty.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    unit = text(qty.get("code")) if qty.get("system") == UCUM else None
    unit = unit or text(qty.get("unit")) or text(qty.get("code"))
    comparator = text(qty.get("comparator")) or ""
    if unit is None or comparator not in ("", "<", "<=", ">=", ">"):
        return None
    return float(value), unit, comparator


def reference(resource: Mapping[str, Any]) -> str | None:
    """``Type/id`` for a resource, or ``None`` when it has no id."""
    rtype, rid = text(resource.get("resourceType")), text(resource.get("id"))
    return f"{rtype}/{rid}" if rtype and rid else None


def iso(stamp: datetime | None) -> str | None:
    """ISO 8601 text for a datetime (UTC), for findings' data."""
    return stamp.isoformat() if stamp else None
