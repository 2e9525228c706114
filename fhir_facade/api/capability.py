"""The CapabilityStatement, derived from what the server really does.

It is built from the same search-parameter table the store indexes with, so it cannot claim a
parameter the server does not search on (or hide one it does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_facade.api.state import FacadeState
from fhir_facade.fhir import FHIR_VERSION
from fhir_facade.search.parameters import COMMON_PARAMS, SUPPORTED_TYPES, params_for

_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
_SEARCH_DOC = (
    "Search supports token (system|code, :not), string (:exact, :contains), "
    "date (eq ne gt lt ge le sa eb ap), reference (:Type), quantity, number "
    "and :missing; _sort, _count, _include, _revinclude, _summary=count, _total; "
    "paging by cursor links. Unknown parameters are ignored unless "
    "Prefer: handling=strict."
)
_STARTED = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource(rtype: str) -> dict[str, Any]:
    params = params_for(rtype)
    refs = [p for p in params.values() if p.type == "reference"]
    revinclude = sorted(
        f"{src}:{p.name}"
        for src in SUPPORTED_TYPES
        for p in params_for(src).values()
        if p.type == "reference" and (not p.targets or rtype in p.targets)
    )
    search = [{"name": n, "type": t} for n, t in COMMON_PARAMS.items()]
    search += [
        {"name": p.name, "type": p.type} for p in sorted(params.values(), key=lambda p: p.name)
    ]
    entry: dict[str, Any] = {
        "type": rtype,
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": search,
    }
    if refs:
        entry["searchInclude"] = sorted(f"{rtype}:{p.name}" for p in refs)
    if revinclude:
        entry["searchRevInclude"] = revinclude
    return entry


def capability_statement(base_url: str, state: FacadeState) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": "cdss",
        "kind": "instance",
        "software": {"name": "cdss FHIR facade", "version": state.software_version},
        "implementation": {"description": "FHIR R4 facade of the CDSS hub", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": _SEARCH_DOC,
                "resource": [_resource(t) for t in sorted(SUPPORTED_TYPES)],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
            }
        ],
    }
