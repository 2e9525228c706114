"""Order intake: the facade's ServiceRequest writes pass through here when orders are enabled.

Why at intake and not in the worker: a clinician who signs an order that no system can receive
must hear so at once (a 422 OperationOutcome naming the reason), not find out from a queue days
later. An order that passes is stored and queued in the same unit of work, so it is never lost.
Only `status=active, intent=order` ServiceRequests are routed; drafts, plans and synced copies
(the sync writes straight to the store, not through the API) are left alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection

from adapters.base import LINK_TAG_SYSTEM, MRN_SYSTEM
from fhir_facade import errors
from fhir_facade.errors import Issue
from fhir_facade.orders import outbox
from fhir_facade.orders.catalog import ImagingOrder, LabOrder, classify
from fhir_facade.search.query import parse_search
from fhir_facade.store.base import StoredResource, Unit

ORDER_ID_SYSTEM = "urn:cdss:order"
ACCESSION_TYPE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]
}
ACCESSION_SYSTEM = "urn:cdss:accession"


def connection(unit: Unit) -> Connection:
    """The SQL connection of a unit: the outbox lives in the store's own database."""
    conn = getattr(unit, "conn", None)
    if not isinstance(conn, Connection):
        raise errors.not_supported("order routing needs the SQL store")
    return conn


def is_order(resource: Mapping[str, Any]) -> bool:
    return (
        resource.get("resourceType") == "ServiceRequest"
        and resource.get("status") == "active"
        and resource.get("intent") == "order"
    )


def accession_for(order_id: str) -> str:
    """A deterministic accession number (DICOM SH: at most 16 characters) for an order id."""
    return "A" + hashlib.sha1(order_id.encode()).hexdigest()[:15].upper()


def _reject(msg: str, where: str, code: str = "business-rule") -> errors.OperationOutcomeError:
    return errors.OperationOutcomeError(422, [Issue(code, msg, expression=(where,))])


def patient_mrn(unit: Unit, resource: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The MRN of the order's patient, who must exist here and be linked to the sources."""
    ref = (resource.get("subject") or {}).get("reference")
    if not isinstance(ref, str) or not ref.startswith("Patient/"):
        raise _reject("the order has no subject Patient reference", "ServiceRequest.subject")
    tags = (resource.get("meta") or {}).get("tag") or []
    if any(t.get("system") == LINK_TAG_SYSTEM for t in tags):
        raise _reject("the order's patient is not linked", "ServiceRequest.subject")
    try:
        stored = unit.read("Patient", ref.split("/", 1)[1])
    except errors.OperationOutcomeError:
        raise _reject(f"unknown patient {ref}", "ServiceRequest.subject", "not-found") from None
    patient: dict[str, Any] = orjson.loads(stored.content or b"{}")
    if patient.get("active") is False or any(
        link.get("type") == "replaced-by" for link in patient.get("link") or []
    ):
        raise _reject(
            f"the link of {ref} is cancelled (inactive or replaced)", "ServiceRequest.subject"
        )
    mrns = [
        i.get("value") for i in patient.get("identifier") or [] if i.get("system") == MRN_SYSTEM
    ]
    if not mrns or not mrns[0]:
        raise _reject(f"{ref} carries no MRN ({MRN_SYSTEM}): not linked", "ServiceRequest.subject")
    return str(mrns[0]), patient


def validate(
    unit: Unit, resource: Mapping[str, Any]
) -> tuple[LabOrder | ImagingOrder, str, dict[str, Any]]:
    """Raise a 422 naming the first reason the order cannot be routed."""
    requester = resource.get("requester")
    if not isinstance(requester, dict) or not (
        requester.get("reference") or requester.get("display")
    ):
        raise _reject("the order has no requester", "ServiceRequest.requester", "required")
    kind = classify(resource)
    if kind is None:
        raise _reject(
            "no code of the order is in the order catalogue (lab LOINC or CT/MR orderable)",
            "ServiceRequest.code",
            "code-invalid",
        )
    mrn, patient = patient_mrn(unit, resource)
    return kind, mrn, patient


def already_ordered(unit: Unit, resource: Mapping[str, Any]) -> StoredResource | None:
    """The ServiceRequest stored earlier under one of this order's identifiers (idempotency)."""
    for ident in resource.get("identifier") or []:
        if not (isinstance(ident, dict) and ident.get("system") and ident.get("value")):
            continue
        query = parse_search(
            "ServiceRequest", [("identifier", f"{ident['system']}|{ident['value']}")]
        )
        query.count, query.total = 1, "none"
        found = unit.search(query).matches
        if found:
            return found[0]
    return None


def _name(patient: Mapping[str, Any]) -> dict[str, str]:
    name = (patient.get("name") or [{}])[0]
    return {"family": str(name.get("family", "")), "given": " ".join(name.get("given") or [])}


def before_create(unit: Unit, resource: dict[str, Any]) -> StoredResource | None:
    """The copy stored earlier when this order is a re-post (same identifier), so the client
    gets it back (200) and nothing is routed twice; validation runs once, in after_write."""
    if not is_order(resource):
        return None
    return already_ordered(unit, resource)


def _routing(
    unit: Unit, resource: Mapping[str, Any], order_id: str
) -> tuple[outbox.Target, str, dict[str, Any]]:
    """Where the order goes (target, ClientSampleID/accession) and what routing needs."""
    kind, mrn, patient = validate(unit, resource)
    target: outbox.Target = "lab" if isinstance(kind, LabOrder) else "imaging"
    key = order_id if target == "lab" else accession_for(order_id)
    payload = {
        "mrn": mrn,
        "name": _name(patient),
        "birthDate": patient.get("birthDate"),
        "gender": patient.get("gender"),
        "priority": resource.get("priority", "routine"),
        "occurrence": resource.get("occurrenceDateTime"),
    }
    if isinstance(kind, LabOrder):
        payload["keywords"] = list(kind.keywords)
    else:
        o = kind.orderable
        payload["procedure"] = {"code": o.code, "system": o.system, "display": o.display}
        payload["modality"] = o.modality
    return target, key, payload


def _what(target: str, payload: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the downstream system is asked to do: a change here is a new routing."""
    procedure = payload.get("procedure") or {}
    return (
        target,
        tuple(payload.get("keywords") or ()),
        procedure.get("code"),
        procedure.get("system"),
    )


def after_write(unit: Unit, stored: StoredResource) -> None:
    """Queue a newly written active order, or a cancel for a revoked one, in the same unit;
    an edit that changes what is ordered is re-routed or refused (`edit`)."""
    if stored.resource_type != "ServiceRequest" or stored.content is None:
        return
    resource = orjson.loads(stored.content)
    conn = connection(unit)
    row = outbox.get(conn, stored.id)
    if row is None and is_order(resource):
        target, key, payload = _routing(unit, resource, stored.id)
        outbox.enqueue(conn, stored.id, target, key, orjson.dumps(payload).decode())
    elif row is not None and resource.get("status") == "revoked":
        cancel(conn, row)
    elif row is not None and is_order(resource):
        edit(unit, conn, row, resource)


def edit(unit: Unit, conn: Connection, row: outbox.Row, resource: Mapping[str, Any]) -> None:
    """A PUT of an active order. Same tests/procedure: nothing to route. Changed, and not yet
    delivered: the queued row is re-routed with the new content. Changed after delivery: the
    lab may have received and started the sample (the modality may have acquired the study),
    and the hub cannot undo that inside this request, so the PUT is refused (422, nothing
    stored) with the way out: revoke this order, which cancels downstream or says why not,
    and place a new one."""
    target, key, payload = _routing(unit, resource, row.order_id)
    if _what(target, payload) == _what(row.target, orjson.loads(row.payload)):
        return
    if row.state == "queued" and row.external_uid is None and row.external_id is None:
        outbox.set_state(
            conn, row.order_id, "queued", target=target, key=key,
            payload=orjson.dumps(payload).decode(), attempts=0, next_at=outbox.now_us(),
            last_error=None,
        )  # fmt: skip
        return
    where = {
        "lab": f"the lab (SENAITE sample {row.external_id or row.key})",
        "imaging": f"the modality worklist (accession {row.key})",
    }.get(row.target, row.target)
    state = "delivered to" if row.state == "routed" else f"{row.state} at"
    raise _reject(
        f"ServiceRequest/{row.order_id} is already {state} {where}, which may have started "
        "work on it; its code cannot be changed. Revoke it (status=revoked) and place a new "
        "order.",
        "ServiceRequest.code",
    )


def after_delete(unit: Unit, resource_type: str, id: str) -> None:
    if resource_type == "ServiceRequest":
        row = outbox.get(connection(unit), id)
        if row is not None:
            cancel(connection(unit), row)


def cancel(conn: Connection, row: outbox.Row) -> None:
    """Cancel downstream: nothing to do if never routed; else the worker cancels it."""
    if row.state == "queued" and row.external_uid is None:
        outbox.set_state(conn, row.order_id, "cancelled", last_error="cancelled before routing")
    elif row.state == "routed":
        outbox.set_state(conn, row.order_id, "cancelling", next_at=outbox.now_us(), attempts=0)
