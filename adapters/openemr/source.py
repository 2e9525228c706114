"""OpenEMR as a sync source: incremental pulls by `_lastUpdated`, type by type.

The cursor is a JSON object mapping each resource type to the newest `meta.lastUpdated` seen
(as OpenEMR wrote it). A pull asks, per type, `_lastUpdated=ge<that value>`: `ge`, not `gt`,
because OpenEMR's timestamps have one-second precision and another record may share the second
of the last one seen; the overlap re-delivers a few resources, which the sync's upsert turns
into no-ops. OpenEMR answers unpaged, so each answer is sorted oldest first and cut into
batches; each batch carries the cursor advanced to its newest resource, so a crash between
batches resumes where the last stored batch ended. Patients and Practitioners go first, so
the references of everything after them resolve.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.base import Batch, Rejected
from adapters.openemr.client import OpenEMRClient
from adapters.openemr.mapper import Unmappable, map_resource
from adapters.openemr.payloads import last_updated

log = logging.getLogger(__name__)

DEFAULT_TYPES: tuple[str, ...] = (
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Observation",
    "ServiceRequest",
    "Specimen",
    "DiagnosticReport",
)
FIRST = ("Patient", "Practitioner")
_OLDEST = datetime.min.replace(tzinfo=UTC)


def parse_cursor(cursor: str | None) -> dict[str, str]:
    """The per-type positions of a cursor (None or "" means: from the beginning)."""
    if not cursor:
        return {}
    state = json.loads(cursor)
    if not isinstance(state, dict) or not all(isinstance(v, str) for v in state.values()):
        raise ValueError("an OpenEMR cursor is a JSON object of resource type -> lastUpdated")
    return {str(k): v for k, v in state.items()}


def _ordered(types: Sequence[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(types))
    return tuple(t for t in FIRST if t in unique) + tuple(t for t in unique if t not in FIRST)


class OpenEMRSource:
    """`adapters.base.Source` over OpenEMR's FHIR API."""

    name = "openemr"

    def __init__(
        self, client: OpenEMRClient, *, base_url: str, types: Sequence[str] = DEFAULT_TYPES
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.types = _ordered(types)
        self.deviations: Counter[str] = Counter()
        """Deviations the mapper made, counted per "Type: what" (for the sync report)."""

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        state = parse_cursor(cursor)
        size = max(1, batch_size)
        for resource_type in self.types:
            since = state.get(resource_type)
            params = [("_lastUpdated", f"ge{since}")] if since else []
            found = self.client.search(resource_type, params).resources
            found.sort(key=lambda r: last_updated(r) or _OLDEST)
            log.info(
                "OpenEMR %s since %s: %d to sync", resource_type, since or "the start", len(found)
            )
            for start in range(0, len(found), size):
                yield self._batch(resource_type, found[start : start + size], state)

    def _batch(
        self, resource_type: str, chunk: list[dict[str, Any]], state: dict[str, str]
    ) -> Batch:
        batch = Batch()
        for raw in chunk:
            try:
                mapped = map_resource(raw)
            except Unmappable as exc:
                batch.rejected.append(Rejected(f"{resource_type}/{raw.get('id')}", str(exc)))
                continue
            batch.resources.append(mapped.resource)
            self.deviations.update(f"{resource_type}: {d}" for d in mapped.deviations)
        newest = max(
            (r for r in chunk if last_updated(r)),
            key=lambda r: last_updated(r) or _OLDEST,
            default=None,
        )
        if newest is not None:
            stamp = str(newest["meta"]["lastUpdated"])
            current = state.get(resource_type)
            if current is None or (last_updated(newest) or _OLDEST) >= _parse(current):
                state[resource_type] = stamp
        batch.cursor = json.dumps(state, sort_keys=True)
        return batch


def _parse(stamp: str) -> datetime:
    return last_updated({"meta": {"lastUpdated": stamp}}) or _OLDEST
