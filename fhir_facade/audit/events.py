"""One AuditEvent (R4) per access, with the fields the DICOM/FHIR audit profiles ask for:
type/subtype (what kind of access), action, recorded, outcome, agent (who, requestor, network
address = the client's IP, purposeOfUse from the token), source (observer), and entity (what:
the resource, the search query, the patient). Never a token or secret: callers pass identities,
not credentials.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Action = Literal["C", "R", "U", "D", "E"]
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# type: RESTful operation for FHIR; DICOM's codes for DICOMweb access and exports
TYPES: dict[str, dict[str, str]] = {
    "rest": {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
    "dicom-query": {"system": DCM, "code": "110112", "display": "Query"},
    "dicom-access": {"system": DCM, "code": "110103", "display": "DICOM Instances Accessed"},
    "export": {"system": DCM, "code": "110106", "display": "Export"},
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: the user (fhirUser or the token's subject at its issuer), the client app, the
    network address, and the purpose of use the token states."""

    issuer: str | None = None
    subject: str | None = None
    fhir_user: str | None = None
    client_id: str | None = None
    address: str | None = None
    purpose_of_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # a key of TYPES
    subtype: str  # restful-interaction code (read, search-type, ...) or a short name
    action: Action
    status: int  # HTTP status of the answer
    resource: str | None = None  # "Observation/1" or "Observation" (a type-level access)
    query: str | None = None  # the query string of a search
    patient: str | None = None
    observer: str = "cdss FHIR facade"
    site: str = "fhir"
    description: str | None = None


def _outcome(status: int) -> str:
    """0 success, 4 minor failure (refused, not found: 4xx), 8 serious failure (5xx)."""
    return "0" if status < 400 else "4" if status < 500 else "8"


def _agents(actor: Actor) -> list[dict[str, Any]]:
    who: dict[str, Any]
    if actor.fhir_user:
        who = {"reference": actor.fhir_user}
    elif actor.subject:
        who = {
            "identifier": {"system": actor.issuer or "urn:ietf:rfc:3986", "value": actor.subject}
        }
    else:
        who = {"display": "anonymous (authentication disabled)"}
    user: dict[str, Any] = {
        "type": {
            "coding": [
                {"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}
            ]
        },
        "who": who,
        "requestor": True,
    }
    if actor.subject and actor.fhir_user:
        user["altId"] = actor.subject
    if actor.address:
        user["network"] = {"address": actor.address, "type": "2"}  # 2: IP address
    if actor.purpose_of_use:
        user["purposeOfUse"] = [_purpose(p) for p in actor.purpose_of_use]
    agents = [user]
    if actor.client_id:
        agents.append(
            {
                "type": {"text": "client application"},
                "who": {
                    "identifier": {
                        "system": actor.issuer or "urn:ietf:rfc:3986",
                        "value": actor.client_id,
                    }
                },
                "requestor": False,
            }
        )
    return agents


def _purpose(value: str) -> dict[str, Any]:
    if value.startswith("http") and "|" in value:
        system, _, code = value.partition("|")
        return {"coding": [{"system": system, "code": code}]}
    return {"coding": [{"system": PURPOSE, "code": value}]}


def _entities(event: Event) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if event.resource or event.query is not None:
        entity: dict[str, Any] = {
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
        }
        if event.resource and "/" in event.resource:
            entity["what"] = {"reference": event.resource}
        elif event.resource:
            entity["name"] = event.resource
        if event.query is not None:
            entity["role"] = {"system": OBJECT_ROLE, "code": "24", "display": "Query"}
            entity["query"] = base64.b64encode(event.query.encode()).decode()
        out.append(entity)
    if event.patient:
        role = {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
        out.append({**person_entity(event.patient), "role": role})
    return out


def person_entity(patient: str) -> dict[str, Any]:
    """The entity naming the patient whose data was accessed (entity type 1, Person)."""
    return {
        "what": {"reference": f"Patient/{patient}"},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
    }


def envelope(
    *,
    type: dict[str, str],
    subtype: dict[str, str],
    action: str,
    outcome: str,
    agents: list[dict[str, Any]],
    source: dict[str, Any],
) -> dict[str, Any]:
    """The fields every AuditEvent here starts with, recorded now; the facade's, the CDS
    Hooks service's and the SMART app's builders add entities and outcomeDesc as they need."""
    return {
        "resourceType": "AuditEvent",
        "type": dict(type),  # a copy: TYPES stays untouched by callers
        "subtype": [subtype],
        "action": action,
        "recorded": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": outcome,
        "agent": agents,
        "source": source,
    }


def build_event(event: Event, actor: Actor) -> dict[str, Any]:
    """The AuditEvent resource as a dict, ready for the store."""
    subtype_system = INTERACTION if event.kind == "rest" else "urn:cdss:audit-subtype"
    out = envelope(
        type=TYPES[event.kind],
        subtype={"system": subtype_system, "code": event.subtype},
        action=event.action,
        outcome=_outcome(event.status),
        agents=_agents(actor),
        source={
            "site": event.site,
            "observer": {"display": event.observer},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    )
    if event.status >= 400 or event.description:
        out["outcomeDesc"] = (event.description or f"HTTP {event.status}")[:1000]
    if actor.purpose_of_use:
        out["purposeOfEvent"] = [_purpose(p) for p in actor.purpose_of_use]
    entities = _entities(event)
    if entities:
        out["entity"] = entities
    return out
