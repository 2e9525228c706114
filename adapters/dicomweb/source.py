"""The `dicomweb` profile's sync source: QIDO-RS polling instead of a change feed.

Finding new and changed studies. Each poll lists the studies whose StudyDate is on or after
the window start (`StudyDate=YYYYMMDD-`), the window start being the previous poll's start time
minus `overlap`. Only the date is sent: servers disagree on a StudyTime range next to a
StudyDate range (dcm4chee-arc matches them as one date-time; Orthanc matches each on its own,
which would drop later days' earlier hours), so the day granularity is the portable choice and
the overlap absorbs clock skew and studies still arriving. The listing is read page by page
(limit/offset), each page handled before the next is asked for. A listed study is fetched and
mapped only if its (StudyInstanceUID, NumberOfStudyRelatedInstances) differs from what was
synced: the cursor's `recent` studies (those dated inside the window, listed again by every
poll) answer without a lookup, the others are looked up in the facade itself, 100 UIDs a query
(adapters/dicomweb/facade.py), so the cursor stays small however large the PACS grows. A
study that gains instances is synced again. A server that omits the count (or
ModalitiesInStudy) in study results is asked at series level, and at instance level if the
series omit their counts too.

Reconciliation. Every `reconcile_interval` seconds (and on the first run) the listing is full,
without a date filter: studies the windows cannot see (an old StudyDate arriving late, no
StudyDate at all) are picked up, and synced studies missing from it were deleted on the PACS
and are deleted from the facade (PacsBatch.deleted; adapters/dicomweb/reconcile.py: compact
seen-set, confirmation by UID, the guard against wiping the facade). A study the mapper rejects
is not in the facade: outside the window it is read again at each reconciliation.

An idle poll (nothing new, the window's first day unchanged) yields no batch: the stored cursor
already asks the same query.

Failures. Any PACS failure (after the client's retries) propagates; only whole batches with
their cursor are stored, so the next run resumes from the cursor and re-lists the same window.
Without a facade attached (`attach_store`, done by the sync engine) the source still works, but
reads every listed study outside its window and decides no deletion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from adapters.base import Batch, Rejected, source_id
from adapters.dicomweb.cursor import PollCursor
from adapters.dicomweb.errors import PacsNotFound
from adapters.dicomweb.facade import FacadeIndex, NoIndex, StudyIndex
from adapters.dicomweb.protocol import DicomJson, PacsClient
from adapters.dicomweb.reconcile import DELETE_GUARD_MIN, SeenUids, gone_studies
from adapters.orthanc.mapper import SOURCE, MappingError, map_endpoint, map_imaging_study
from adapters.orthanc.payloads import integer, text
from adapters.orthanc.source import INSTANCE_FIELDS, SERIES_FIELDS, STUDY_FIELDS
from fhir_facade.store.base import Store

logger = logging.getLogger(__name__)

LIST_FIELDS = (*STUDY_FIELDS, "StudyDate", "StudyTime")
__all__ = ["DELETE_GUARD_MIN", "DicomwebSource", "PacsBatch", "imaging_study_ref"]
_CHUNK = 64  # studies read ahead at most, with several fetchers


@dataclass(slots=True)
class PacsBatch(Batch):
    """A Batch that may also carry deletions: "ImagingStudy/<id>" references to delete."""

    deleted: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Probe:
    """What was learnt about one listed study before deciding to fetch it."""

    count: int
    series: list[DicomJson] | None = None
    instances: list[DicomJson] | None = None


def imaging_study_ref(study_uid: str) -> str:
    """The facade reference of a study's ImagingStudy (the mapper's deterministic id)."""
    return f"ImagingStudy/{source_id(SOURCE, 'ImagingStudy', study_uid)}"


class DicomwebSource:
    """Pulls ImagingStudy resources from any DICOMweb PACS by QIDO-RS polling."""

    name = "pacs"

    def __init__(
        self,
        client: PacsClient,
        *,
        dicomweb_public_url: str,
        base_url: str,
        timezone: tzinfo | None = None,
        overlap: float = 86_400.0,
        reconcile_interval: float = 3_600.0,
        max_delete_fraction: float = 0.5,
        clock: Callable[[], float] = time.time,
        fetchers: int = 4,
        index: StudyIndex | None = None,
        page_size: int | None = None,
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.dicomweb_public_url = dicomweb_public_url.rstrip("/")
        self.timezone = timezone
        self.overlap = timedelta(seconds=overlap)
        self.reconcile_interval = reconcile_interval
        self.max_delete_fraction = max_delete_fraction
        self.clock = clock
        self.fetchers = max(1, fetchers)  # studies read at once (1: one by one)
        self.deviations = 0
        self.index: StudyIndex = index if index is not None else NoIndex()
        self.page_size = page_size or int(getattr(client, "page_size", 500))
        self._lock = threading.Lock()

    def attach_store(self, store: Store) -> None:
        """De-duplicate and reconcile against this facade (the sync engine calls it)."""
        self.index = FacadeIndex(store)

    # ------------------------------------------------------------ the poll

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        state = PollCursor.decode(cursor)
        started = self.clock()
        full = state.window_start is None or (
            state.reconciled_at is None or started - state.reconciled_at >= self.reconcile_interval
        )
        window_start = self._local(started) - self.overlap
        keep_from = f"{window_start:%Y%m%d}"  # dated from here: listed again by the next poll
        seen = SeenUids() if full else None
        recent: dict[str, int] = {}
        batch, endpoint_sent, moved, listed = PacsBatch(), False, full, 0
        for page in self._listing(None if full else state.window_start):
            listed += len(page)
            if seen is not None:
                seen.add(page)
            synced = self._synced(page, state.recent)
            for uid, outcome in self._outcomes(page, synced):
                if outcome is None:
                    count = synced.get(uid)
                else:
                    item, count = outcome
                    if isinstance(item, dict) and not endpoint_sent:
                        endpoint_sent = True
                        batch.resources.append(
                            map_endpoint(self.dicomweb_public_url, source_url=self.base_url)
                        )
                    if isinstance(item, Rejected):
                        batch.rejected.append(item)
                    else:
                        batch.resources.append(item)
                    moved = True
                if count is not None and (text(page[uid], "StudyDate") or "") >= keep_from:
                    recent[uid] = count
                if len(batch.resources) + len(batch.rejected) >= batch_size:
                    batch.cursor = state.encode()  # the facade records the studies so far
                    yield batch
                    batch = PacsBatch()
        logger.info(
            "pacs %s: %s listing: %d studies",
            self.base_url,
            "full" if full else f"window from {state.window_start:%Y-%m-%d}",
            listed,
        )
        if seen is not None:
            batch.deleted = self._deletions(seen, recent)
        if not moved and state.window_start and window_start.date() == state.window_start.date():
            return  # an idle poll: the stored cursor asks the same QIDO query; spare the write
        state.window_start, state.recent = window_start, recent
        if full:
            state.reconciled_at = started
        batch.cursor = state.encode()
        yield batch

    def _synced(self, page: dict[str, DicomJson], recent: dict[str, int]) -> dict[str, int]:
        """The instance counts synced for this page's studies: the cursor's window studies,
        the facade for the others (one indexed query per 100 UIDs)."""
        synced = {uid: recent[uid] for uid in page if uid in recent}
        synced.update(self.index.counts([uid for uid in page if uid not in recent]))
        return synced

    def _deletions(self, seen: SeenUids, recent: dict[str, int]) -> list[str]:
        if isinstance(self.index, NoIndex):
            logger.warning("pacs %s: no facade attached; deletions not reconciled", self.base_url)
            return []
        gone = gone_studies(
            self.client,
            self.index,
            seen,
            max_fraction=self.max_delete_fraction,
            where=self.base_url,
        )
        for uid, _ in gone:
            recent.pop(uid, None)
        return [f"ImagingStudy/{rid}" for _, rid in gone]

    def _outcomes(
        self, studies: dict[str, DicomJson], known: dict[str, int]
    ) -> Iterator[tuple[str, tuple[dict[str, Any] | Rejected, int] | None]]:
        """Each listed study's outcome, in listing order. With `fetchers` > 1 a chunk of studies
        is read at once (a PACS serves several requests in parallel); a failure raises at its
        turn, so nothing after it is yielded, as when reading one by one."""
        items = list(studies.items())
        if self.fetchers == 1:
            for uid, listed in items:
                yield uid, self._study(uid, listed, known)
            return
        with ThreadPoolExecutor(self.fetchers, thread_name_prefix="pacs-fetch") as pool:
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                outcomes = pool.map(lambda item: self._study(item[0], item[1], known), chunk)
                for (uid, _), outcome in zip(chunk, outcomes, strict=True):
                    yield uid, outcome

    def _local(self, epoch: float) -> datetime:
        """The PACS's wall-clock time (DICOM dates and times are local, without a zone)."""
        return datetime.fromtimestamp(epoch, self.timezone).replace(tzinfo=None)

    def _listing(self, since: datetime | None) -> Iterator[dict[str, DicomJson]]:
        """The study results page by page (limit/offset), by StudyInstanceUID; ends at an
        empty page, or at a page that repeats the previous one (a server ignoring offset)."""
        filters = {} if since is None else {"StudyDate": f"{since:%Y%m%d}-"}
        offset, previous = 0, None
        while True:
            results = self.client.search_for_studies(
                search_filters=filters, fields=LIST_FIELDS, limit=self.page_size, offset=offset
            )
            if not results:
                return
            page: dict[str, DicomJson] = {}
            for dataset in results:
                uid = text(dataset, "StudyInstanceUID")
                if uid is not None:
                    page.setdefault(uid, dataset)
                else:
                    logger.warning("pacs %s: a study without StudyInstanceUID", self.base_url)
            if previous is not None and page.keys() == previous:
                logger.warning("pacs %s: a page repeated (offset ignored?)", self.base_url)
                return
            yield page
            offset, previous = offset + len(results), page.keys()

    # ------------------------------------------------------------ one study

    def _study(
        self, uid: str, listed: DicomJson, known: dict[str, int]
    ) -> tuple[dict[str, Any] | Rejected, int] | None:
        """The study mapped (or rejected) with its instance count; None when unchanged or gone."""
        try:
            probe = self._probe(uid, listed)
            if known.get(uid) == probe.count:
                return None
            fetched = self._fetch(uid, listed, probe)
        except PacsNotFound:
            logger.info("pacs %s: study %s gone while being read; skipped", self.base_url, uid)
            return None
        try:
            mapping = map_imaging_study(
                *fetched,
                dicomweb_public_url=self.dicomweb_public_url,
                source_url=self.base_url,
                tz=self.timezone,
            )
        except MappingError as exc:
            logger.warning("pacs %s: study %s rejected: %s", self.base_url, uid, exc)
            return Rejected(f"ImagingStudy/{uid}", str(exc)), probe.count
        for deviation in mapping.deviations:
            logger.warning("pacs %s: study %s: %s", self.base_url, uid, deviation)
        with self._lock:
            self.deviations += len(mapping.deviations)
        return mapping.resource, probe.count

    def _probe(self, uid: str, listed: DicomJson) -> _Probe:
        """The study's instance count: from the study result, else from its series' counts,
        else by listing its instances (servers may omit the QIDO count attributes)."""
        given = integer(listed, "NumberOfStudyRelatedInstances")
        if given is not None and given >= 0:
            return _Probe(given)
        series = self.client.search_for_series(
            uid, fields=SERIES_FIELDS, expected=integer(listed, "NumberOfStudyRelatedSeries")
        )
        counts = [integer(s, "NumberOfSeriesRelatedInstances") for s in series]
        if series and all(c is not None and c >= 0 for c in counts):
            return _Probe(sum(c for c in counts if c is not None), series)
        instances = self.client.search_for_instances(uid, fields=INSTANCE_FIELDS)
        return _Probe(len(instances), series, instances)

    def _fetch(
        self, uid: str, listed: DicomJson, probe: _Probe
    ) -> tuple[DicomJson, list[DicomJson], list[DicomJson]]:
        """Study result, series, instances (the first with its full WADO-RS metadata)."""
        series = probe.series
        if series is None:
            series = self.client.search_for_series(
                uid, fields=SERIES_FIELDS, expected=integer(listed, "NumberOfStudyRelatedSeries")
            )
        instances = probe.instances
        if instances is None:
            instances = self.client.search_for_instances(
                uid, fields=INSTANCE_FIELDS, expected=probe.count
            )
        if instances:
            series_uid = text(instances[0], "SeriesInstanceUID")
            sop_uid = text(instances[0], "SOPInstanceUID")
            if series_uid and sop_uid:
                metadata = self.client.retrieve_instance_metadata(uid, series_uid, sop_uid)
                instances = [{**instances[0], **metadata}, *instances[1:]]
        return listed, series, instances
