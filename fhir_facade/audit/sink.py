"""Where AuditEvents go: queued for the CDS recorder's writer, which stores them in the facade's
store in batches, off the request path (one writer per app; cds_hooks/recorder.py says why)."""

from __future__ import annotations

from typing import Any, Protocol

from cds_hooks.recorder import Record, Recorder


class AuditSink(Protocol):
    def submit(self, event: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


class RecorderSink:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def submit(self, event: dict[str, Any]) -> None:
        self.recorder.submit(Record(event))

    def flush(self) -> None:
        """Wait until everything submitted is written (tests, shutdown)."""
        self.recorder.flush()


class NullSink:
    """Auditing switched off (CDSS_FHIR_AUDIT=false: tests of other areas, benchmarks)."""

    def submit(self, event: dict[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass
