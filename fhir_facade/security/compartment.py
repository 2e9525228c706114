"""The Patient compartment as this facade indexes it: which stored resources belong to a patient.

A resource belongs to patient P when it is Patient/P, or when one of the paths of its type's
`patient` search parameter (registry_data: `subject` where it is a Patient, Encounter's subject,
AllergyIntolerance's patient, Provenance's target...) references Patient/P. Types without a
`patient` parameter (Practitioner, Endpoint) hold no patient's data and are outside any
compartment. The same paths drive the search restriction (`patient=Patient/P` added to every
search of a compartment type), so what a patient-scoped search finds and what the response
filter lets through agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fhir_facade.search.parameters import SUPPORTED_TYPES, params_for

COMPARTMENT_TYPES = frozenset(
    {"Patient"} | {t for t in SUPPORTED_TYPES if "patient" in params_for(t) and t != "AuditEvent"}
)


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    items = node if isinstance(node, list) else [node]
    for item in items:
        if isinstance(item, Mapping) and path[0] in item:
            yield from _walk(item[path[0]], path[1:])


def _references(resource: Mapping[str, Any], path: str) -> Iterator[str]:
    for value in _walk(resource, tuple(path.split("."))):
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
                yield ref["reference"]


def belongs_to(resource: Mapping[str, Any], patient_id: str) -> bool:
    """Whether `resource` may be shown to (or written by) a token confined to `patient_id`.
    Only relative references count: the store keeps references to its own base relative, and an
    absolute URL names another server's patient."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return resource.get("id") == patient_id
    if not isinstance(rtype, str) or rtype not in COMPARTMENT_TYPES:
        return rtype in SUPPORTED_TYPES and rtype != "AuditEvent"
    own = f"Patient/{patient_id}"
    for path in params_for(rtype)["patient"].paths:
        for ref in _references(resource, path):
            if ref == own or ref.startswith(own + "/_history/"):
                return True
    return False


def restriction(resource_type: str, patient_id: str) -> tuple[str, str] | None:
    """The search parameter that confines a search of `resource_type` to the compartment."""
    if resource_type == "Patient":
        return ("_id", patient_id)
    if resource_type in COMPARTMENT_TYPES:
        return ("patient", f"Patient/{patient_id}")
    return None
