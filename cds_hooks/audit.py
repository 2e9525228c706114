"""One FHIR AuditEvent per hook call and per feedback, written into the facade's store.

Who (the client's iss and sub, and the user in context), what (service, hook, hookInstance,
patient, the cards' uuids), when, and the outcome. Never a token: neither the client's JWT nor
the fhirAuthorization access token is passed to this module. The jti is recorded: it identifies
the call without granting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cds_hooks.auth import ClientIdentity
from fhir_facade.audit.events import TYPES, envelope, person_entity

EVENT_SYSTEM = "urn:cdss:codesystem:cds-hooks-event"
HOOK_INSTANCE_SYSTEM = "urn:cdss:cds-hooks:hookInstance"
_OUTCOMES = {2: "0", 4: "4", 5: "8"}  # success, minor failure (4xx), serious failure (5xx)


def _outcome(status: int) -> str:
    return _OUTCOMES.get(status // 100, "4")


def audit_event(
    *,
    event: str,
    action: str,
    status: int,
    client: ClientIdentity,
    service_id: str,
    hook: str | None = None,
    hook_instance: str | None = None,
    patient_id: str | None = None,
    user_id: str | None = None,
    details: Sequence[tuple[str, str]] = (),
    description: str | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """The AuditEvent (R4) as a dict; `event` is cds-service-call or cds-feedback."""
    agents: list[dict[str, Any]] = [
        {
            "type": {"text": "CDS client"},
            "who": {
                "identifier": {"system": "urn:ietf:rfc:3986", "value": client.iss},
                **({"display": client.sub} if client.sub else {}),
            },
            "requestor": True,
            **({"altId": client.tenant} if client.tenant else {}),
            **({"network": {"address": address, "type": "2"}} if address else {}),
        }
    ]
    if user_id:
        agents.append({"type": {"text": "user"}, "who": {"reference": user_id}, "requestor": False})
    entity_details = [{"type": "service", "valueString": service_id}]
    if hook:
        entity_details.append({"type": "hook", "valueString": hook})
    if client.jti:
        entity_details.append({"type": "jti", "valueString": client.jti})
    entity_details += [{"type": k, "valueString": v} for k, v in details if v]
    call: dict[str, Any] = {"name": service_id, "detail": entity_details}
    if hook_instance:
        call["what"] = {"identifier": {"system": HOOK_INSTANCE_SYSTEM, "value": hook_instance}}
    entities = [call]
    if patient_id:
        entities.append(person_entity(patient_id))
    out = envelope(
        type=TYPES["rest"],
        subtype={"system": EVENT_SYSTEM, "code": event},
        action=action,
        outcome=_outcome(status),
        agents=agents,
        source={"observer": {"display": "cdss CDS Hooks service"}, "site": "cds-services"},
    )
    out["entity"] = entities
    if description:
        out["outcomeDesc"] = description[:1000]
    return out
