"""The audit trail, written off the request path and in batches.

Every hook call leaves an AuditEvent in the facade's store and its issued cards in `cds_card`.
Writing them inside the call would add a FHIR validation and two commits to the clinician's
wait; writing each on its own after the response would still cost two commits per call and
contend for SQLite's write lock with the calls that follow. One writer thread drains a queue
and writes what has accumulated (at most `max_batch` calls) in one transaction per table
instead.

Where the batch is written: the store validates every AuditEvent it creates (through
fhir.resources, about 2 ms each: more CPU than the rest of the call's own work), and a thread of
the server process would take that time from the calls in flight, one GIL being shared. So, on
a SQL store, the writer thread hands each batch to a child process (`ProcessWriter`; one per
server process, started on first use, with its own connections to the database) and waits for
its answer without holding the GIL. The AuditEvents are still created through the store,
validated, one unit per batch. A child found gone between batches is started again; if one cannot
be started, or is lost during a batch, that batch and all later ones of the app are written in
this process instead (`LocalWriter`).

`flush()` waits until everything submitted so far is written (tests, shutdown); `close()`
drains and stops.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from cds_hooks import recorder_child
from cds_hooks.feedback import FeedbackStore
from cds_hooks.ids import new_uuid
from fhir_facade.store.base import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Record:
    audit: dict[str, Any]
    cards: list[dict[str, Any]] = field(default_factory=list)  # cds_card rows


# -- writing one batch ----------------------------------------------------------------------


def write_records(
    store: Store,
    feedback: FeedbackStore,
    records: list[Record],
    gate: AbstractContextManager[Any] | None = None,
) -> list[str]:
    """Write a batch: the issued cards in one transaction, the AuditEvents in one unit of the
    store (one by one when the batch fails, so that one bad event does not cost the others
    their record). Returns what could not be written, with the reason (nothing is raised)."""
    problems: list[str] = []
    lock = gate or nullcontext()

    def attempt(what: str, run: Callable[[], object]) -> bool:
        try:
            run()
        except Exception:
            problems.append(f"could not write {what}\n{traceback.format_exc()}")
            return False
        return True

    def audit(events: list[dict[str, Any]]) -> None:
        with lock, store.unit() as unit:
            for event in events:
                unit.create(event, id=new_uuid())

    rows = [row for r in records for row in r.cards]
    attempt("the issued cards", lambda: feedback.insert_cards(rows) if rows else None)
    events = [r.audit for r in records]
    if not attempt("a batch of AuditEvents", lambda: audit(events)):
        for event in events:
            attempt("an AuditEvent", lambda e=event: audit([e]))  # type: ignore[misc]
    return problems


class Writer(Protocol):
    def write(self, records: list[Record]) -> list[str]: ...

    def close(self) -> None: ...


class LocalWriter:
    """Writes in this process (a thread of the server)."""

    def __init__(
        self,
        store: Store,
        feedback: FeedbackStore,
        gate: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.store, self.feedback, self.gate = store, feedback, gate

    def write(self, records: list[Record]) -> list[str]:
        return write_records(self.store, self.feedback, records, self.gate)

    def close(self) -> None:
        pass


class WriterStopped(RuntimeError):
    """The writer process was stopped at exit (an app that was never closed)."""


class _WriterProcess:
    """The child (`cds_hooks.recorder_child.main`, in a fresh interpreter with this process's
    import path) and the pipes to it: one request at a time, each answered before the next."""

    def __init__(self) -> None:
        paths = [p for p in sys.path if isinstance(p, str)]
        command = (
            f"import sys; sys.path[:0] = {paths!r}; "
            "from cds_hooks.recorder_child import main; main()"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def stopped(self) -> bool:
        return self._proc.stdin is None or self._proc.stdin.closed

    def request(self, document: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            if self._proc.stdin.closed:  # stopped: the interpreter is exiting
                raise WriterStopped("the audit writer process was stopped")
            recorder_child.write_frame(self._proc.stdin, document)
            answer = recorder_child.read_frame(self._proc.stdout)
        if answer is None:
            raise EOFError(f"the audit writer process exited ({self._proc.poll()})")
        return answer

    def stop(self) -> None:
        """End of input: the child finishes what it has and exits."""
        held = self._lock.acquire(timeout=30)  # after the batch in flight, if any
        try:
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                self._proc.stdin.close()
        finally:
            if held:
                self._lock.release()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_SHARED: _WriterProcess | None = None
_SHARED_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child must not write into its parent's pipes: it starts its own writer."""
    global _SHARED, _SHARED_LOCK
    _SHARED, _SHARED_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _writer_process() -> _WriterProcess:
    """The server process's writer child, started on first use and shared by its recorders
    (an app each: tests build many, and each would otherwise pay an interpreter start)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is not None and _SHARED.stopped:
            raise WriterStopped("the audit writer process was stopped")
        if _SHARED is None or not _SHARED.alive():
            _SHARED = _WriterProcess()
            atexit.register(_SHARED.stop)
        return _SHARED


class ProcessWriter:
    """Writes in the writer child, which opens its own connections to the same SQL database;
    falls back to `fallback` for good when the child cannot be started or is lost during a batch
    (a batch it committed just before it died is then written twice: a duplicate rather than a
    gap in the audit)."""

    def __init__(self, database_url: str, fallback: LocalWriter) -> None:
        self.database_url = database_url
        self.fallback = fallback
        self._child: _WriterProcess | None = None
        self._broken = False

    def write(self, records: list[Record]) -> list[str]:
        if not self._broken:
            try:
                self._child = _writer_process()
                batch = [{"audit": r.audit, "cards": r.cards} for r in records]
                answer = self._child.request(
                    {"op": "write", "url": self.database_url, "records": batch}
                )
                return [str(p) for p in answer["problems"]]
            except WriterStopped:  # exiting with this app still open: finish here, quietly
                self._broken = True
            except Exception:  # not started, died, or a record it cannot carry
                log.exception("the audit writer process failed; writing in the server process")
                self._broken = True
        return self.fallback.write(records)

    def close(self) -> None:
        """Let the child close its connections to this database (it outlives this app)."""
        child, self._child = self._child, None
        if child is not None and child.alive():
            try:
                child.request({"op": "forget", "url": self.database_url})
            except Exception:
                log.warning("the audit writer process did not acknowledge the close")


# -- the queue and its writer thread --------------------------------------------------------


class Recorder:
    def __init__(
        self,
        store: Store,
        feedback: FeedbackStore,
        *,
        gate: AbstractContextManager[Any] | None = None,
        database_url: str | None = None,
        max_batch: int = 16,
    ) -> None:
        """`database_url`: write in a child process with its own connections to that database,
        the one `store` and `feedback` are on (see the module docstring); None: in a thread of
        this process."""
        local = LocalWriter(store, feedback, gate)
        self.writer: Writer = ProcessWriter(database_url, local) if database_url else local
        self.max_batch = max_batch
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cds-recorder", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        self._queue.put(record)

    def flush(self) -> None:
        self._queue.join()

    def pending(self) -> bool:
        """Whether records submitted so far are not all written yet."""
        return self._queue.unfinished_tasks > 0

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)
        self.writer.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < self.max_batch and first is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if r is not None]
            try:
                if records:
                    for problem in self.writer.write(records):
                        log.error("%s", problem)
            except Exception:  # the writers report rather than raise; this is the last net
                log.exception("could not write %d audit records", len(records))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if None in batch:
                return
