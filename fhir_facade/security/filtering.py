"""What a response may carry for a token: entries of types it is not granted, and, under
`patient/` scopes, resources outside the token's patient compartment, are taken out. This runs
on every Bundle the guard lets through (search matches and _include/_revinclude, history,
batch/transaction responses and the searchsets inside them), so a resource the restricted query
did not select (an include, a cursor, a history entry) still cannot leak."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_facade.security.compartment import belongs_to
from fhir_facade.security.scopes import Access


def visible(resource: Mapping[str, Any], access: Access) -> bool:
    rtype = resource.get("resourceType")
    if rtype == "OperationOutcome":
        return True
    if not isinstance(rtype, str):
        return False
    decision = access.may_see(rtype)
    if decision == "all":
        return True
    return (
        decision == "patient"
        and access.patient is not None
        and belongs_to(resource, access.patient)
    )


def filter_bundle(bundle: dict[str, Any], access: Access, *, restricted: bool) -> int:
    """Drop what `access` may not see, in place; returns how many entries were dropped.
    Entries without a resource (history deletions) stay only for unrestricted tokens."""
    kept, dropped = [], 0
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            dropped += filter_bundle(resource, access, restricted=restricted)
            kept.append(entry)
        elif isinstance(resource, dict):
            if visible(resource, access):
                kept.append(entry)
            elif bundle.get("type") in ("transaction-response", "batch-response"):
                entry.pop("resource")  # the outcome of the write stays, the content goes
                kept.append(entry)
                dropped += 1
            else:
                dropped += 1
        elif not restricted or bundle.get("type") in ("transaction-response", "batch-response"):
            kept.append(entry)
        else:
            dropped += 1
    if "entry" in bundle:
        bundle["entry"] = kept
    return dropped
