"""OpenEMR FHIR JSON -> the facade's FHIR R4 JSON. Pure: no I/O, no clock.

What changes on the way in (everything else is kept, ids and `Patient/<uuid>` references
included, so a resource has the same id in the facade as in OpenEMR):
- Patient: the PT identifier keeps its `type` but gets a real namespace as `system` (OpenEMR puts
  the v2-0203 code-system URL there, §1.9), and the hub's MRN identifier
  `{system: MRN_SYSTEM, value: pubpid}` is added: it is what links the other sources' records.
- meta keeps only `profile`; versionId/lastUpdated are the facade's own to assign, and the sync
  stamps meta.source and the source tag.
- Empty strings, lists and objects (invalid in FHIR; OpenEMR emits some) are removed.
- What still fails validation is dropped element by element, unless the element is required,
  in which case the resource is unmappable. Each change is a deviation: logged and returned so
  the caller counts it.
Every resource returned has passed `fhir_facade.fhir.validate`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import MRN_SYSTEM
from fhir_facade.fhir import InvalidResource, validate

log = logging.getLogger(__name__)

PUBPID_SYSTEM = "urn:cdss:openemr:pubpid"
"""The namespace the hub gives OpenEMR's public patient id (the PT identifier)."""
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SUPPORTED = frozenset(
    {
        "Patient",
        "Practitioner",
        "Organization",
        "Encounter",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
        "Observation",
        "ServiceRequest",
        "DiagnosticReport",
        "Specimen",
    }
)
REQUIRED = {
    "Encounter": {"status", "class"},
    "Condition": {"subject"},
    "AllergyIntolerance": {"patient"},
    "MedicationRequest": {"status", "intent", "subject"},
    "Observation": {"status", "code"},
    "ServiceRequest": {"status", "intent", "subject"},
    "DiagnosticReport": {"status", "code"},
}
ALWAYS_KEPT = {"resourceType", "id"}
MAX_REPAIRS = 8


class Unmappable(ValueError):
    """A payload that cannot become a valid facade resource (the reason says why)."""


@dataclass(frozen=True, slots=True)
class Mapped:
    resource: dict[str, Any]
    deviations: tuple[str, ...] = ()


def map_resource(raw: Mapping[str, Any]) -> Mapped:
    """One OpenEMR resource -> a validated facade resource, with the deviations made."""
    resource_type = raw.get("resourceType")
    rid = raw.get("id")
    if resource_type not in SUPPORTED:
        raise Unmappable(f"resource type {resource_type!r} is not synced from OpenEMR")
    if not isinstance(rid, str) or not rid:
        raise Unmappable(f"{resource_type} without an id")
    deviations: list[str] = []
    resource = _prune(copy.deepcopy(dict(raw)), resource_type, deviations)
    if not isinstance(resource, dict):
        raise Unmappable(f"{resource_type}/{rid} is empty")
    _meta(resource)
    if resource_type == "Patient":
        _patient_identifiers(resource, deviations)
    canonical = _validated(resource, deviations)
    for deviation in deviations:
        log.info("OpenEMR %s/%s: %s", resource_type, rid, deviation)
    return Mapped(canonical, tuple(deviations))


def _prune(value: Any, where: str, deviations: list[str]) -> Any:
    """Drop empty strings/lists/objects (FHIR forbids them), recording each drop."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            cleaned = _prune(item, f"{where}.{key}", deviations)
            if cleaned is None:
                deviations.append(f"removed empty {where}.{key}")
            else:
                kept[key] = cleaned
        return kept or None
    if isinstance(value, list):
        kept_items = []
        for i, item in enumerate(value):
            cleaned = _prune(item, f"{where}[{i}]", deviations)
            if cleaned is None:
                deviations.append(f"removed empty {where}[{i}]")
            else:
                kept_items.append(cleaned)
        return kept_items or None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _meta(resource: dict[str, Any]) -> None:
    profiles = (resource.get("meta") or {}).get("profile")
    resource.pop("meta", None)
    if profiles:
        resource["meta"] = {"profile": list(profiles)}


def _patient_identifiers(resource: dict[str, Any], deviations: list[str]) -> None:
    identifiers: list[dict[str, Any]] = list(resource.get("identifier") or [])
    pubpid = None
    for identifier in identifiers:
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding") or []}
        if "PT" in codes:
            pubpid = identifier.get("value")
            if identifier.get("system") in (None, V2_0203):
                identifier["system"] = PUBPID_SYSTEM
    if not pubpid:
        deviations.append("no PT identifier (pubpid): the patient cannot be linked by MRN")
    elif not any(i.get("system") == MRN_SYSTEM for i in identifiers):
        mr = {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}]}
        identifiers.append({"use": "usual", "type": mr, "system": MRN_SYSTEM, "value": pubpid})
    if identifiers:
        resource["identifier"] = identifiers


def _validated(resource: dict[str, Any], deviations: list[str]) -> dict[str, Any]:
    resource_type = str(resource["resourceType"])
    required = REQUIRED.get(resource_type, set()) | ALWAYS_KEPT
    for _round in range(MAX_REPAIRS):
        try:
            return validate(resource)
        except InvalidResource as exc:
            elements = {_element(where) for _msg, where in exc.problems}
            blocking = [e for e in elements if e is None or e in required]
            if blocking or not elements:
                raise Unmappable(f"{resource_type}/{resource['id']} invalid: {exc}") from None
            for element in sorted(e for e in elements if e is not None):
                problem = next(m for m, w in exc.problems if _element(w) == element)
                resource.pop(element, None)
                deviations.append(f"dropped {element}: {problem}")
    raise Unmappable(f"{resource_type}/{resource['id']} still invalid after repairs")


def _element(expression: str) -> str | None:
    """`Observation.component[0].code` -> `component` (the top-level element at fault)."""
    parts = expression.split(".")
    if len(parts) < 2:
        return None
    return parts[1].split("[", 1)[0]
