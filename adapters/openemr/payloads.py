"""Tolerant models of what OpenEMR's FHIR API sends back (source-systems.md §1.8, §1.9).

OpenEMR's search Bundles are not quite FHIR: `type: "collection"` instead of `searchset`,
`total` counting only the entries returned, no `search.mode`, a `meta.lastUpdated` in local time
without a zone (which fails strict validation). So the envelope is read with these lenient models
and only the resources inside go through validation (in the mapper). A 404 answers `[]`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class BundleLink(_Lenient):
    relation: str | None = None
    url: str | None = None


class BundleEntry(_Lenient):
    fullUrl: str | None = None
    resource: dict[str, Any] | None = None


class SearchBundle(_Lenient):
    """A search answer: OpenEMR's `collection` Bundle or a standard `searchset`."""

    resourceType: str
    type: str | None = None
    total: int | None = None
    link: list[BundleLink] = []
    entry: list[BundleEntry] = []

    def resources(self) -> list[dict[str, Any]]:
        return [e.resource for e in self.entry if isinstance(e.resource, dict)]

    def next_url(self) -> str | None:
        """A `next` link, which OpenEMR's FHIR API never sends (kept for other servers)."""
        return next((link.url for link in self.link if link.relation == "next" and link.url), None)


def last_updated(resource: dict[str, Any]) -> datetime | None:
    """meta.lastUpdated as an aware datetime; OpenEMR's zone-less values are taken as UTC."""
    meta = resource.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
