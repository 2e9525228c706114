"""The order session's pure parts: the catalogue shown, draft ServiceRequests, and applying a
CDS suggestion's actions to the drafts (CDS Hooks 2.0 #action: create adds the resource, update
replaces the draft with the same id in its entirety, delete removes the drafts named by
`resourceId`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from adapters.senaite.loinc import load_table
from cds_hooks.clinical.imaging_catalog import catalogue
from fhir_facade.orders.catalog import lab_keywords

LOINC = "http://loinc.org"
IMAGING_CATEGORY = {
    "coding": [{"system": "http://snomed.info/sct", "code": "363679005", "display": "Imaging"}]
}
LAB_CATEGORY = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}
    ]
}


@dataclass(frozen=True, slots=True)
class Orderable:
    kind: str  # "imaging" | "lab"
    system: str
    code: str
    display: str

    @property
    def key(self) -> str:
        return f"{self.system}|{self.code}"


@cache
def orderables() -> tuple[Orderable, ...]:
    """What the order catalogue can route (fhir_facade/orders/catalog.py): the LOINC CT/MR
    orderables of the imaging catalogue and the LOINC codes the LIS maps to an analysis."""
    imaging = [
        Orderable("imaging", o.system, o.code, o.display)
        for o in catalogue()
        if o.system == LOINC and o.contrast != "unspecified"
    ]
    table = load_table()
    names = {row.loinc: row.display for keyword in table.keywords() for row in table.rows(keyword)}
    labs = [
        Orderable("lab", LOINC, code, names.get(code, code))
        for code in sorted(lab_keywords(), key=lambda c: names.get(c, c))
    ]
    return tuple(imaging + labs)


def find(key: str) -> Orderable | None:
    return next((o for o in orderables() if o.key == key), None)


def draft(item: Orderable, patient: str, user: str, encounter: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": uuid.uuid4().hex,
        "status": "draft",
        "intent": "order",
        "category": [IMAGING_CATEGORY if item.kind == "imaging" else LAB_CATEGORY],
        "code": {
            "coding": [{"system": item.system, "code": item.code, "display": item.display}],
            "text": item.display,
        },
        "subject": {"reference": f"Patient/{patient}"},
        "requester": {"reference": user},
        "authoredOn": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    return resource


def code_key(resource: Mapping[str, Any]) -> str:
    coding = ((resource.get("code") or {}).get("coding") or [{}])[0]
    return f"{coding.get('system', '')}|{coding.get('code', '')}"


def apply_actions(
    drafts: dict[str, dict[str, Any]], actions: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Apply a suggestion's actions to the drafts (by id); what was done, for the page."""
    done: list[str] = []
    for action in actions:
        kind = action.get("type")
        resource = action.get("resource")
        if kind in ("create", "update") and isinstance(resource, dict):
            copy = dict(resource)
            if kind == "create" or not copy.get("id"):
                copy["id"] = copy.get("id") or uuid.uuid4().hex
            copy.setdefault("status", "draft")
            drafts[str(copy["id"])] = copy
            done.append(f"{kind}d {copy.get('code', {}).get('text', copy['id'])}")
        elif kind == "delete":
            ids = action.get("resourceId") or []
            for ref in ids if isinstance(ids, list) else [ids]:
                drafts.pop(str(ref).rpartition("/")[2], None)
                done.append(f"removed {ref}")
    return done


def bundle(drafts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": dict(r)} for r in drafts.values()],
    }
