"""Suggestions and links the order services offer, built from the draft order itself.

Replacing a study sends the WHOLE draft ServiceRequest with only its code swapped (the spec's
update action carries the resource in its entirety); removing a draft is a delete by resourceId
(the string-in-resource form is deprecated); a new order is a draft ServiceRequest for the same
patient, encounter and requester, so that the client can put it in the same ordering session.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson

from cds_hooks import cards
from cds_hooks.cards import Link, Suggestion
from cds_hooks.clinical.imaging_catalog import Orderable
from cds_hooks.request import HookRequest
from cds_hooks.services.common import DraftOrder

CREATININE_LOINC = "2160-0"
CREATININE_DISPLAY = "Creatinine [Mass/volume] in Serum or Plasma"
LAB_CATEGORY = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}
    ]
}


def replace_with(order: DraftOrder, alternative: Orderable) -> Suggestion | None:
    """Swap the draft's code for the alternative study; None when the draft has no id (an
    update must name the resource it replaces)."""
    if order.resource is None or order.id is None:
        return None
    resource: dict[str, Any] = copy.deepcopy(dict(order.resource))
    resource["code"] = {
        "coding": [
            {"system": alternative.system, "code": alternative.code, "display": alternative.display}
        ],
        "text": alternative.display,
    }
    return Suggestion(
        label=f"Order {alternative.display} instead",
        actions=(cards.update(resource, f"Change {order.reference} to {alternative.display}"),),
        is_recommended=True,
    )


def remove(order: DraftOrder, label: str = "Remove this draft order") -> Suggestion | None:
    if order.reference is None:
        return None
    return Suggestion(
        label=label, actions=(cards.delete(order.reference, f"Delete {order.reference}"),)
    )


def order_creatinine(request: HookRequest, order: DraftOrder) -> Suggestion:
    """A draft serum creatinine (LOINC 2160-0) for the patient, noting which study it is for."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [LAB_CATEGORY],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": CREATININE_LOINC,
                    "display": CREATININE_DISPLAY,
                }
            ],
            "text": "Serum creatinine",
        },
        "subject": {"reference": f"Patient/{request.patient_id}"},
    }
    encounter = request.context.get("encounterId")
    if isinstance(encounter, str):
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    user = request.user_id
    if user and user.split("/", 1)[0] in ("Practitioner", "PractitionerRole"):
        resource["requester"] = {"reference": user}
    if order.reference:
        resource["note"] = [
            {"text": f"Kidney function before contrast imaging ({order.reference})"}
        ]
    return Suggestion(
        label="Order a serum creatinine",
        actions=(cards.create(resource, "Add a draft serum creatinine (LOINC 2160-0)"),),
        is_recommended=True,
    )


def view_study_link(
    smart_url: str,
    patient_id: str | None,
    *,
    study_uid: str | None,
    study_ref: str | None,
    label: str = "View the prior study",
) -> Link:
    """A `smart` link to the viewer; the study is named both in the URL (for clients without
    appContext support, e.g. Oracle Health) and in appContext."""
    context: dict[str, Any] = {"view": "imaging-study"}
    query: dict[str, str] = {}
    if patient_id:
        context["patient"] = patient_id
    if study_uid:
        context["studyInstanceUid"] = query["study"] = study_uid
    if study_ref:
        context["imagingStudy"] = query["imagingStudy"] = study_ref
    return cards.smart_link(label, _with_query(smart_url, query), orjson.dumps(context).decode())


def open_app_link(smart_url: str, patient_id: str | None, label: str, view: str) -> Link:
    context: Mapping[str, Any] = {"view": view, **({"patient": patient_id} if patient_id else {})}
    return cards.smart_link(
        label, _with_query(smart_url, {"view": view}), orjson.dumps(context).decode()
    )


def _with_query(url: str, query: Mapping[str, str]) -> str:
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(query)
