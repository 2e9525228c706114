"""The audit trail, written off the request path and in batches.

Every hook call leaves an AuditEvent in the facade's store and its issued cards in `cds_card`.
Writing them inside the call would add a FHIR validation and two commits to the clinician's
wait; writing each on its own after the response would still cost two commits per call and
contend for SQLite's write lock with the calls that follow. One writer thread drains a queue
and writes what has accumulated in one transaction per table instead; batches stay small (the
store validates each AuditEvent while it holds SQLite's write lock, which the facade's readers
also take). `flush()` waits until
everything submitted so far is written (tests, shutdown); `close()` drains and stops.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from cds_hooks.feedback import FeedbackStore
from cds_hooks.ids import new_uuid
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Record:
    audit: dict[str, Any]
    cards: list[dict[str, Any]] = field(default_factory=list)  # cds_card rows


class Recorder:
    def __init__(
        self,
        store: Store,
        feedback: FeedbackStore,
        *,
        gate: AbstractContextManager[Any] | None = None,
        max_batch: int = 16,
    ) -> None:
        self.store = store
        self.gate = gate or nullcontext()
        self.feedback = feedback
        self.max_batch = max_batch
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cds-recorder", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        self._queue.put(record)

    def flush(self) -> None:
        self._queue.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if r is not None]
            try:
                if records:
                    self._write(records)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if None in batch:
                return

    def _write(self, records: list[Record]) -> None:
        rows = [row for r in records for row in r.cards]
        _attempt("the issued cards", lambda: self.feedback.insert_cards(rows) if rows else None)
        events = [r.audit for r in records]
        if not _attempt("a batch of AuditEvents", lambda: self._audit(events)):
            for event in events:  # one bad event must not cost the others their record
                _attempt("an AuditEvent", lambda e=event: self._audit([e]))  # type: ignore[misc]

    def _audit(self, events: list[dict[str, Any]]) -> None:
        with self.gate, self.store.unit() as unit:
            for event in events:
                unit.create(event, id=new_uuid())


def _attempt(what: str, run: Callable[[], object]) -> bool:
    try:
        run()
    except Exception:
        log.exception("could not write %s", what)
        return False
    return True
