"""The AuditEvents of facade accesses: one per interaction, one per Bundle plus one per entry;
queued for the writer (never on the request path) and never allowed to break an answer."""

from __future__ import annotations

import logging

from starlette.types import Scope

from fhir_facade.audit import Actor, AuditSink, Event, build_event
from fhir_facade.security.operations import Operation, Plan, classify
from fhir_facade.security.scopes import Access

log = logging.getLogger(__name__)


class FacadeAudit:
    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink

    def audit(self, scope: Scope, op: Operation, plan: Plan, status: int) -> None:
        """Queue the access's AuditEvent(s); never raises."""
        try:
            actor = _actor(scope, plan.access)
            patient = plan.access.patient if plan.access and plan.restricted else None
            if patient is None and op.resource_type == "Patient" and op.id:
                patient = op.id
            if op.interaction == "transaction":
                self._bundle(plan, status, actor, patient)
                return
            query = plan.query if op.permission == "s" else None
            event = Event("rest", op.interaction, op.action, status, op.target, query, patient)
            self.sink.submit(build_event(event, actor))
        except Exception:  # the audit never breaks an answer; its loss is logged loudly
            log.exception("could not queue the AuditEvent for %s %s", scope["method"], op.target)

    def _bundle(self, plan: Plan, status: int, actor: Actor, patient: str | None) -> None:
        kind = plan.bundle_type if plan.bundle_type in ("batch", "transaction") else "transaction"
        summary = Event(
            "rest",
            kind,
            "E",
            status,
            None,
            None,
            patient,
            description=f"{kind} of {len(plan.entries)} entries",
        )
        self.sink.submit(build_event(summary, actor))
        for method, url in plan.entries:
            path, _, query = url.partition("?")
            entry_op = classify(method, "/" + path)
            event = Event(
                "rest",
                entry_op.interaction,
                entry_op.action,
                status,
                entry_op.target,
                query if entry_op.permission == "s" else None,
                patient,
            )
            self.sink.submit(build_event(event, actor))


def _actor(scope: Scope, access: Access | None) -> Actor:
    client = scope.get("client")
    address = str(client[0]) if client else None
    if access is None:
        return Actor(address=address)
    return Actor(
        issuer=access.issuer,
        subject=access.subject,
        fhir_user=access.fhir_user,
        client_id=access.client_id,
        address=address,
        purpose_of_use=access.purpose_of_use,
    )
