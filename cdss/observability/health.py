"""Whether each configured source system (OpenEMR, SENAITE, Orthanc) answers, probed in the
background so that no clinical call ever waits on a probe.

A source is up when it answers HTTP at all (any status below 500: an auth challenge still proves
the server is there); a refused connection, a timeout or a 5xx marks it down. The CDS service
reads the latest result to tell the clinician which source its cards could not consult, and
/readyz reports it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from cdss.observability.metrics import SOURCE_UP

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SourceStatus:
    up: bool | None = None  # None: not probed yet
    since: float = 0.0  # when it entered this state (epoch seconds)
    error: str | None = None


class SourceHealth:
    def __init__(
        self, targets: Mapping[str, str], *, interval_s: float = 5.0, timeout_s: float = 1.0
    ) -> None:
        self.targets = dict(targets)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.status = {name: SourceStatus() for name in self.targets}
        self._task: asyncio.Task[None] | None = None

    async def _probe(self, http: httpx.AsyncClient, name: str, url: str) -> None:
        try:
            resp = await http.get(url, timeout=self.timeout_s)
            error = f"HTTP {resp.status_code}" if resp.status_code >= 500 else None
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        self._set(name, error)

    def _set(self, name: str, error: str | None) -> None:
        status, up = self.status[name], error is None
        if status.up is not up:
            if status.up is not None:
                (log.info if up else log.warning)(
                    "source %s is %s", name, "back" if up else f"unreachable ({error})"
                )
            status.up, status.since = up, time.time()
        status.error = error
        SOURCE_UP.labels(source=name).set(1 if up else 0)

    async def probe_all(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            await asyncio.gather(*(self._probe(http, n, u) for n, u in self.targets.items()))

    async def _loop(self) -> None:
        while True:
            await self.probe_all()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self.targets and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def down(self) -> list[str]:
        """Sources known to be unreachable right now (one never probed counts as reachable)."""
        return [name for name, s in self.status.items() if s.up is False]

    def report(self) -> dict[str, Any]:
        return {
            name: {
                "status": {True: "up", False: "down", None: "unknown"}[s.up],
                **({"error": s.error} if s.error else {}),
                **({"since": round(s.since, 3)} if s.since else {}),
            }
            for name, s in self.status.items()
        }


def probe_targets(settings: Any, pacs: Any = None) -> dict[str, str]:
    """A probe URL for each configured source of a `cdss.sources.SourceSettings`; the PACS as
    its `adapters.dicomweb.settings.PacsSettings` profile says: Orthanc's `/system` (profile
    `orthanc`), or a one-study QIDO-RS on the DICOMweb root (profile `dicomweb`: a standard
    server has no status resource, and its root may answer 404 even when QIDO works)."""
    targets: dict[str, str] = {}
    dicomweb = pacs is not None and pacs.profile == "dicomweb"
    for name, url, path in (
        ("openemr", settings.openemr_url, "/apis/default/fhir/metadata"),
        ("senaite", settings.senaite_url, "/@@API/senaite/v1"),
        ("orthanc", None if dicomweb else settings.orthanc_url, "/system"),
        ("pacs", pacs.url if dicomweb else None, "/studies?limit=1"),
    ):
        if url is not None:
            targets[name] = str(url).rstrip("/") + path
    return targets
