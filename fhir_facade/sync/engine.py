"""One sync run of one source: pull batches after the stored cursor, store each atomically.

A batch's resources, its Provenance and the advanced cursor commit in one transaction. A crash
or a source failure mid-run therefore leaves the store at the last whole batch, and the next run
resumes there; re-delivered records are no-op upserts (deterministic ids, content hashes), so
nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.base import Batch, Rejected, Source
from fhir_facade.errors import OperationOutcomeError
from fhir_facade.store.base import Store, Unit
from fhir_facade.sync.linker import IdentityLinker, relink
from fhir_facade.sync.orderlinks import OrderLinker
from fhir_facade.sync.provenance import batch_provenance, stamp
from models.jobs import enqueue_imaging

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    deleted: int = 0  # removed at the source (a batch's `deleted` references)


@dataclass(slots=True)
class SyncReport:
    source: str
    counts: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    rejected: list[Rejected] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)  # "Type/id (MRN x)"
    batches: int = 0
    cursor: str | None = None
    seconds: float = 0.0

    @property
    def stored(self) -> int:
        return sum(c.created + c.updated + c.unchanged for c in self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "batches": self.batches,
            "cursor": self.cursor,
            "seconds": round(self.seconds, 3),
            "counts": {t: _counts(c) for t, c in sorted(self.counts.items())},
            "rejected": [
                {"source_ref": r.source_ref, "reason": r.reason} for r in self.rejected[:100]
            ],
            "unlinked": self.unlinked[:100],
        }


def _counts(c: Counts) -> dict[str, int]:
    found = {
        "created": c.created,
        "updated": c.updated,
        "unchanged": c.unchanged,
        "rejected": c.rejected,
    }
    if c.deleted:
        found["deleted"] = c.deleted
    return found


def cursor_key(source: str) -> str:
    return f"sync:{source}:cursor"


def _store_batch(
    unit: Unit, source: Source, batch: Batch, report: SyncReport, known: dict[str, str]
) -> None:
    """`known`: the MRNs resolved by earlier batches of this run (see IdentityLinker)."""
    linker, changed = IdentityLinker(unit, known), []
    linker.preload(batch.resources)  # before any write: its searches then flush nothing
    OrderLinker(unit).link(batch.resources)  # the hub's order links survive re-syncs
    prefetch = getattr(unit, "prefetch", None)  # the SQL store: one lookup per batch, not row
    if prefetch is not None:
        keys = [(str(r.get("resourceType")), str(r["id"])) for r in batch.resources if r.get("id")]
        prefetch(keys)
    for resource in batch.resources:
        rtype = str(resource.get("resourceType"))
        stamp(resource, source.name, source.base_url)
        missing = linker.link(resource)
        try:
            result = unit.update(resource)
        except OperationOutcomeError as exc:
            if exc.status not in (400, 422):
                raise
            report.counts[rtype].rejected += 1
            report.rejected.append(Rejected(f"{rtype}/{resource.get('id')}", str(exc)))
            log.warning(
                "%s: %s/%s rejected by validation: %s", source.name, rtype, resource.get("id"), exc
            )
            continue
        counts = report.counts[rtype]
        if result.created:
            counts.created += 1
        elif result.changed:
            counts.updated += 1
        else:
            counts.unchanged += 1
        if result.changed:
            changed.append(f"{rtype}/{result.resource.id}")
            if rtype == "ImagingStudy":
                enqueue_imaging(unit, resource)  # the imaging AI job (issue 7), when enabled
            if rtype == "Patient":
                known.clear()  # its identifiers may have changed
        if missing:
            report.unlinked.append(f"{rtype}/{result.resource.id} (MRN {', '.join(missing)})")
    for item in batch.rejected:
        kind = item.source_ref.split("/", 1)[0]
        report.counts[kind].rejected += 1
    report.rejected.extend(batch.rejected)
    _delete(unit, source, batch, report)
    if changed:
        unit.create(batch_provenance(source.name, source.base_url, changed, batch.cursor))
    if batch.cursor is not None:
        unit.set_state(cursor_key(source.name), batch.cursor)


def _delete(unit: Unit, source: Source, batch: Batch, report: SyncReport) -> None:
    """Deletions a source reports (adapters.dicomweb.source.PacsBatch.deleted: "Type/id"), in
    the batch's transaction; deleting what is already gone is a no-op, so a replay is harmless."""
    for ref in getattr(batch, "deleted", ()):
        rtype, _, rid = str(ref).partition("/")
        if unit.delete(rtype, rid) is not None:
            report.counts[rtype].deleted += 1
            log.info("%s: %s deleted (gone from the source)", source.name, ref)


def sync_source(
    store: Store,
    source: Source,
    *,
    batch_size: int = 200,
    on_batch: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Pull and store everything new from one source; raises if the source fails mid-run
    (whole batches already stored stay stored, with their cursor)."""
    started = time.monotonic()
    report = SyncReport(source.name)
    known: dict[str, str] = {}
    attach = getattr(source, "attach_store", None)  # a source that asks the facade what it has
    if attach is not None:
        attach(store)
    with store.unit() as unit:
        report.cursor = unit.get_state(cursor_key(source.name))
    for batch in source.pull(report.cursor, batch_size=batch_size):
        with store.unit() as unit:
            _store_batch(unit, source, batch, report, known)
        report.batches += 1
        report.cursor = batch.cursor if batch.cursor is not None else report.cursor
        if on_batch is not None:
            on_batch(report)
    with store.unit() as unit:
        fixed, left = relink(unit)
        unit.set_state(f"sync:{source.name}:last_report", orjson.dumps(report.as_json()).decode())
    if fixed:
        log.info(
            "%s: linked %d earlier unlinked resources (%d still unlinked)", source.name, fixed, left
        )
    report.seconds = time.monotonic() - started
    return report
