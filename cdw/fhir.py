"""Small readers of FHIR R4 JSON for the mapping: dates, codings, references."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def parse_instant(value: Any) -> datetime | None:
    """A FHIR date/dateTime/instant as naive UTC (partial dates fall on the 1st)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1)
        if len(text) == 10:
            return datetime.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_date(value: Any) -> date | None:
    parsed = parse_instant(value)
    return parsed.date() if parsed else None


def codings(concept: Any) -> list[tuple[str | None, str]]:
    """(system, code) of each coding of a CodeableConcept (or of a bare Coding)."""
    if not isinstance(concept, dict):
        return []
    items = concept.get("coding") if "coding" in concept else [concept]
    out: list[tuple[str | None, str]] = []
    for c in items or []:
        if isinstance(c, dict) and isinstance(c.get("code"), str):
            out.append((c.get("system"), c["code"]))
    return out


def reference_id(value: Any, resource_type: str) -> str | None:
    """The id of a literal `Type/id` reference; None for logical or other-type references."""
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    return None


def categories(resource: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for cat in resource.get("category") or []:
        for system, code in codings(cat):
            if system in (None, OBS_CATEGORY):
                found.add(code)
    return found


def subject_patient(resource: dict[str, Any]) -> str | None:
    for field in ("subject", "patient"):
        found = reference_id(resource.get(field), "Patient")
        if found:
            return found
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
