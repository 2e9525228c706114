"""Where each synced resource came from: meta.source and a source tag on every resource, and
one Provenance resource per stored batch naming the source, the cursor and what changed."""

from __future__ import annotations

from typing import Any

from adapters.base import SOURCE_TAG_SYSTEM
from fhir_facade.store.records import instant, now_us


def stamp(resource: dict[str, Any], source: str, base_url: str) -> dict[str, Any]:
    meta = resource.setdefault("meta", {})
    meta["source"] = base_url
    tags = [t for t in meta.get("tag", []) if t.get("system") != SOURCE_TAG_SYSTEM]
    tags.append({"system": SOURCE_TAG_SYSTEM, "code": source})
    meta["tag"] = tags
    return resource


def batch_provenance(
    source: str, base_url: str, targets: list[str], cursor: str | None
) -> dict[str, Any]:
    entity: dict[str, Any] = {"role": "source", "what": {"display": f"{source} at {base_url}"}}
    if cursor is not None:
        entity["what"]["identifier"] = {
            "system": f"{SOURCE_TAG_SYSTEM}:{source}:cursor",
            "value": cursor[:1000],
        }
    return {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets],
        "recorded": instant(now_us()),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                    "display": "revise",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "assembler",
                            "display": "Assembler",
                        }
                    ]
                },
                "who": {"display": "cdss sync"},
            }
        ],
        "entity": [entity],
        "meta": {"source": base_url, "tag": [{"system": SOURCE_TAG_SYSTEM, "code": source}]},
    }
