"""Ids, references, provenance and dates shared by the SENAITE mappers (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.base import SOURCE_TAG_SYSTEM, source_id
from adapters.senaite.terminology import SOURCE_NAME


def fhir_datetime(value: datetime | None) -> str | None:
    """FHIR dateTime/instant text, as the facade's validator writes it back (UTC as `Z`)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def resource_id(resource_type: str, uid: str) -> str:
    """The facade id of the resource made from a SENAITE object (stable across re-syncs)."""
    return source_id(SOURCE_NAME, resource_type, uid)


def reference(resource_type: str, uid: str) -> dict[str, str]:
    """A direct reference to another resource made from a SENAITE object."""
    return {"reference": f"{resource_type}/{resource_id(resource_type, uid)}"}


def meta(source_url: str) -> dict[str, Any]:
    """Provenance: the SENAITE instance and the source tag."""
    return {"source": source_url, "tag": [{"system": SOURCE_TAG_SYSTEM, "code": SOURCE_NAME}]}
