"""Running the sync for several sources, once or following them, with a breaker per source.

A source that keeps failing opens its circuit: it is skipped (one log line, not one per poll)
until the reset timeout lets one trial run through, so a PACS that is down neither floods the log
nor delays the other sources.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pybreaker

from adapters.base import Source
from fhir_facade.store.base import Store
from fhir_facade.sync.engine import SyncReport, sync_source

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runner:
    store: Store
    sources: Sequence[Source]
    batch_size: int = 200
    fail_max: int = 3
    reset_timeout: float = 30.0
    on_batch: Callable[[SyncReport], None] | None = None
    breakers: dict[str, pybreaker.CircuitBreaker] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def breaker(self, name: str) -> pybreaker.CircuitBreaker:
        if name not in self.breakers:
            self.breakers[name] = pybreaker.CircuitBreaker(
                fail_max=self.fail_max, reset_timeout=self.reset_timeout, name=name
            )
        return self.breakers[name]

    def run_once(self, stop: threading.Event | None = None) -> list[SyncReport]:
        """One pass over every source; a failing source is logged and reported, not fatal.
        Once `stop` is set, the sources not started yet are left for the next run."""
        reports = []
        for source in self.sources:
            if stop is not None and stop.is_set():
                break
            try:
                report: SyncReport = self.breaker(source.name).call(
                    sync_source,
                    self.store,
                    source,
                    batch_size=self.batch_size,
                    on_batch=self.on_batch,
                )
            except pybreaker.CircuitBreakerError:
                if self.failures.get(source.name) != "open":
                    log.error(
                        "sync %s: circuit open after repeated failures; retrying in %.0f s",
                        source.name,
                        self.reset_timeout,
                    )
                self.failures[source.name] = "open"
                continue
            except Exception as exc:  # any source failure: resume from the cursor next time
                self.failures[source.name] = f"{type(exc).__name__}: {exc}"
                log.error(
                    "sync %s failed (%s: %s); the next run resumes from its cursor",
                    source.name,
                    type(exc).__name__,
                    exc,
                )
                continue
            if source.name in self.failures:
                log.info("sync %s: source is back", source.name)
                del self.failures[source.name]
            reports.append(report)
        return reports

    def follow(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Poll every source until `stop` is set; new data lands within about `interval`."""
        while not stop.is_set():
            self.run_once(stop)
            stop.wait(interval)
