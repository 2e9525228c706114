"""The CapabilityStatement at /apis/default/fhir/metadata (served without a token).

OpenEMR builds its statement at runtime from its route table (no captured copy exists, §6);
the simulator's lists the types OpenEMR routes (§1.6), with search parameters for those it holds
data for, and the SMART `oauth-uris` extension clients use to find the token endpoint.
"""

from __future__ import annotations

from typing import Any

from simulators.openemr import catalog
from simulators.openemr.store import utc_now

FHIR_PREFIX = "/apis/default/fhir"
WRITABLE = ("Patient", "Practitioner")
SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
ROUTED_TYPES = frozenset(
    [
        "AllergyIntolerance",
        "Appointment",
        "CarePlan",
        "CareTeam",
        "Condition",
        "Coverage",
        "Device",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "Goal",
        "Group",
        "Immunization",
        "Location",
        "Media",
        "Medication",
        "MedicationDispense",
        "MedicationRequest",
        "Observation",
        "Organization",
        "Patient",
        "Person",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "ServiceRequest",
        "Specimen",
        "ValueSet",
        "OperationDefinition",
    ]
)


def capability(public_base: str) -> dict[str, Any]:
    """What the simulator serves: OpenEMR's routed types, their §1.7 search parameters, and
    the SMART OAuth endpoints. POST appears as interaction code `insert`, the (non-FHIR) code
    OpenEMR's RestControllerHelper::addRequestMethods writes for it."""
    oauth = f"{public_base}/oauth2/default"
    resources = []
    for name in sorted(ROUTED_TYPES):
        entry: dict[str, Any] = {
            "type": name,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{name}",
        }
        interactions = ["read", "search-type"] + (["insert", "update"] if name in WRITABLE else [])
        entry["interaction"] = [{"code": code} for code in interactions]
        kind = catalog.KINDS.get(name)
        if kind is not None:
            entry["searchParam"] = [{"name": n, "type": p.kind} for n, p in kind.params.items()]
        resources.append(entry)
    endpoints = ("authorize", "token", "register", "introspect")
    oauth_uris = [
        {"url": e, "valueUri": f"{oauth}/{'registration' if e == 'register' else e}"}
        for e in endpoints
    ]
    service = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }
        ]
    }
    security = {
        "extension": [{"url": SMART_OAUTH_URIS, "extension": oauth_uris}],
        "service": [service],
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": utc_now().isoformat(),
        "kind": "instance",
        "software": {"name": "OpenEMR", "version": "8.2.0-dev (simulator)"},
        "implementation": {
            "description": "OpenEMR FHIR API (simulator)",
            "url": f"{public_base}{FHIR_PREFIX}",
        },
        "fhirVersion": "4.0.1",
        "format": ["application/json"],
        "rest": [{"mode": "server", "security": security, "resource": resources}],
    }
