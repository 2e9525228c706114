"""One AuditEvent per access the app serves or refuses, written into the facade's store.

Who (the EHR user and the app), what (the resource or DICOMweb path, the patient), the outcome.
Written off the request path's critical section in the thread pool; a failed write is logged,
never shown to the user as a failure of the page. Never a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from fhir_facade.audit.events import TYPES, envelope, person_entity
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)
EVENT_SYSTEM = "urn:cdss:codesystem:smart-app-event"
_OUTCOME = {2: "0", 3: "0", 4: "4", 5: "8"}

Writer = Callable[[dict[str, Any]], None]


def audit_event(
    *,
    event: str,
    path: str,
    status: int,
    patient: str | None,
    user: str | None,
    client_id: str | None,
    description: str | None = None,
) -> dict[str, Any]:
    """The AuditEvent (R4): `event` is launch, fhir-read, dicomweb-qido or dicomweb-wado."""
    agents: list[dict[str, Any]] = [
        {
            "type": {"text": "SMART app"},
            "who": {"display": f"cdss SMART app ({client_id or 'unregistered'})"},
            "requestor": False,
        }
    ]
    if user:
        agents.insert(0, {"type": {"text": "user"}, "who": {"reference": user}, "requestor": True})
    entities: list[dict[str, Any]] = [
        {"name": path, "detail": [{"type": "path", "valueString": path}]}
    ]
    if patient:
        entities.append(person_entity(patient))
    out = envelope(
        type=TYPES["rest"],
        subtype={"system": EVENT_SYSTEM, "code": event},
        action="R" if event != "launch" else "E",
        outcome=_OUTCOME.get(status // 100, "4"),
        agents=agents,
        source={"observer": {"display": "cdss SMART app"}, "site": "smart"},
    )
    out["entity"] = entities
    if description:
        out["outcomeDesc"] = description[:1000]
    return out


def store_writer(store: Store) -> Writer:
    def write(event: dict[str, Any]) -> None:
        with store.unit() as unit:
            unit.create(event)

    return write


async def record(writer: Writer | None, event: dict[str, Any]) -> None:
    if writer is None:
        return
    try:
        await run_in_threadpool(writer, event)
    except Exception:  # the audit trail must not break the page; it is logged loudly
        log.exception("could not write the SMART app's AuditEvent")
