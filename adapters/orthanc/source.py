"""The Orthanc source for the sync: its change log, read from a cursor, as ImagingStudy batches.

Which changes count. Orthanc 1.10.1 logs NewInstance/NewSeries/NewStudy/NewPatient as each first
instance arrives, then StableSeries/StableStudy/StablePatient once no instance has arrived for
`StableAge` seconds (observed: ~1-2.5 s after the last upload with StableAge 1; Debian's default is
60 s). NewStudy fires on the first instance, when the study is still incomplete, so only
StableStudy is mapped: the ImagingStudy then has its final series and counts. A later instance in
the same study produces a new StableStudy, and the study is mapped again (the upsert is
idempotent: the id derives from the StudyInstanceUID). Within one page of the log only the last
StableStudy of a study is mapped.

Deletions. Deleting a study in Orthanc 1.10.1 does not log a `Deleted` change; it removes the
study's earlier entries from the log (observed) while `Last` keeps counting. So a deletion is
invisible here, and the ImagingStudy stays in the facade; the Batch contract has no tombstones. A
study deleted between reading the log and fetching it (404) is skipped with a log line.

Batches and cursor. A Batch holds at most `batch_size` resources and rejects; the shared Endpoint
travels in the batch before (or with) the first ImagingStudy that references it. The cursor is a
change Seq, as a string: each Batch carries the Seq up to which every change is covered by it or
an earlier batch, so a crash resumes right after it; the last Batch of a pull carries the log's
`Last`, and is yielded even when empty if the cursor moved (changes that map to nothing).
If a call to Orthanc fails (after the client's retries), the exception propagates and no Batch is
yielded for the changes in flight: the cursor never moves past a study that was not mapped. If
Orthanc's log ends before the cursor (its database was replaced), the pull starts again from 0,
which the idempotent upserts make harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from adapters.base import Batch, Rejected
from adapters.orthanc.client import OrthancClient, OrthancNotFound
from adapters.orthanc.mapper import MappingError, map_endpoint, map_imaging_study
from adapters.orthanc.payloads import Change, ChangesPage, DicomJson, integer, text

logger = logging.getLogger(__name__)

STUDY_FIELDS = (
    "StudyDescription",
    "TimezoneOffsetFromUTC",
    "NameOfPhysiciansReadingStudy",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
"""includefield for QIDO studies: Orthanc 1.7 leaves StudyDescription out by default."""

SERIES_FIELDS = (
    "BodyPartExamined",
    "Laterality",
    "SeriesDate",
    "SeriesTime",
    "NumberOfSeriesRelatedInstances",
)
INSTANCE_FIELDS = ("SOPClassUID", "InstanceNumber")


Fetched = tuple[DicomJson, list[DicomJson], list[DicomJson]]
"""A study's QIDO-RS answer, its series and its instances (the first with full metadata)."""


@dataclass(slots=True)
class _Pending:
    """The batch being filled; `safe` is the Seq up to which every change is in a batch."""

    safe: int
    batch: Batch = field(default_factory=Batch)
    endpoint_sent: bool = False

    def size(self) -> int:
        return len(self.batch.resources) + len(self.batch.rejected)

    def add(self, item: dict[str, Any] | Rejected, batch_size: int, cursor: int) -> Iterator[Batch]:
        """Add a resource (replacing an earlier version of it) or a reject; yield the batch when
        full, with `cursor`: the Seq a crash may resume after once this batch is stored."""
        if isinstance(item, Rejected):
            self.batch.rejected.append(item)
        else:
            resources = self.batch.resources
            resources[:] = [r for r in resources if r["id"] != item["id"]]
            resources.append(item)
        if self.size() >= batch_size:
            self.batch.cursor = str(cursor)
            yield self.batch
            self.batch = Batch()


class OrthancSource:
    """Pulls ImagingStudy resources (and their WADO-RS Endpoint) from one Orthanc."""

    name = "orthanc"

    def __init__(
        self,
        client: OrthancClient,
        *,
        dicomweb_public_url: str,
        base_url: str,
        timezone: tzinfo | None = None,
        page_size: int = 1000,
        fetchers: int = 4,
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.dicomweb_public_url = dicomweb_public_url.rstrip("/")
        self.timezone = timezone
        self.page_size = page_size
        self.fetchers = max(1, fetchers)  # studies fetched at once, ahead (1: one by one)
        self.deviations = 0  # lenient-read oddities seen so far (each also logged)

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        """Batches of changes after `cursor`, oldest first; the last one carries the final Seq."""
        since = _parse_cursor(cursor)
        pending = _Pending(safe=since)
        pool = None
        if self.fetchers > 1:
            pool = ThreadPoolExecutor(self.fetchers, thread_name_prefix="orthanc-fetch")
        try:
            yield from self._pages(since, pending, batch_size, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _pages(
        self, since: int, pending: _Pending, batch_size: int, pool: ThreadPoolExecutor | None
    ) -> Iterator[Batch]:
        start, restarted = since, False
        while True:
            page = self.client.changes(since, limit=self.page_size)
            if not page.changes and page.last < since and not restarted:
                logger.warning(
                    "orthanc %s: change log ends at %d, before the cursor %d (database replaced?); "
                    "reading it again from the start",
                    self.base_url,
                    page.last,
                    since,
                )
                since = pending.safe = 0
                restarted = True
                continue
            yield from self._page(page, pending, batch_size, pool)
            since = max(since, page.last)
            if page.done or not page.changes:
                break
        if pending.size() or since != start:
            pending.batch.cursor = str(since)
            yield pending.batch

    def _page(
        self,
        page: ChangesPage,
        pending: _Pending,
        batch_size: int,
        pool: ThreadPoolExecutor | None,
    ) -> Iterator[Batch]:
        """The page's studies are fetched in log order, by the pool ahead of their turn (Orthanc
        serves several at once); a failed fetch raises at its turn, so nothing after it is
        yielded, as when fetching one by one."""
        latest = {c.id: c.seq for c in page.changes if c.change_type == "StableStudy"}
        wanted = [
            c for c in page.changes if c.change_type == "StableStudy" and latest[c.id] == c.seq
        ]
        fetch = pool.map if pool is not None else map
        fetched = fetch(self._fetch_or_reject, wanted)
        for change in page.changes:
            if change.change_type == "StableStudy" and latest[change.id] == change.seq:
                outcome = self._study(change, next(fetched))
                if isinstance(outcome, dict) and not pending.endpoint_sent:
                    pending.endpoint_sent = True  # stored before the first study that needs it
                    endpoint = map_endpoint(self.dicomweb_public_url, source_url=self.base_url)
                    yield from pending.add(endpoint, batch_size, pending.safe)
                if outcome is not None:
                    yield from pending.add(outcome, batch_size, change.seq)
            pending.safe = change.seq

    def _fetch_or_reject(self, change: Change) -> Fetched | MappingError | None:
        try:
            return self._fetch(change)
        except MappingError as exc:
            return exc

    def _study(
        self, change: Change, fetched: Fetched | MappingError | None
    ) -> dict[str, Any] | Rejected | None:
        """One stable study as an ImagingStudy, a Rejected record, or None if it is gone."""
        try:
            if isinstance(fetched, MappingError):
                raise fetched
            if fetched is None:
                logger.info(
                    "orthanc: %s deleted since its StableStudy (Seq %d); skipped",
                    change.path,
                    change.seq,
                )
                return None
            mapping = map_imaging_study(
                *fetched,
                dicomweb_public_url=self.dicomweb_public_url,
                source_url=self.base_url,
                tz=self.timezone,
            )
        except MappingError as exc:
            logger.warning("orthanc: %s rejected: %s", change.path, exc)
            return Rejected(change.path, str(exc))
        for deviation in mapping.deviations:
            logger.warning("orthanc: %s: %s", change.path, deviation)
        self.deviations += len(mapping.deviations)
        return mapping.resource

    def _fetch(self, change: Change) -> Fetched | None:
        """The study's DICOM JSON by QIDO-RS (+ one instance's full WADO-RS metadata), or None."""
        try:
            rest = self.client.study(change.id)
        except OrthancNotFound:
            return None
        uid = rest.study_instance_uid
        if uid is None:
            raise MappingError("Orthanc's index has no StudyInstanceUID for this study")
        filters = {"StudyInstanceUID": uid}
        pid = rest.patient_id  # Orthanc keys a study by PatientID + StudyInstanceUID
        if pid and not set(pid) & set("*?\\"):  # QIDO would read those as wildcards or a list
            filters["PatientID"] = pid
        studies = self.client.search_for_studies(search_filters=filters, fields=STUDY_FIELDS)
        if not studies:
            return None
        series = self.client.search_for_series(
            uid, fields=SERIES_FIELDS, expected=integer(studies[0], "NumberOfStudyRelatedSeries")
        )
        instances = self.client.search_for_instances(
            uid,
            fields=INSTANCE_FIELDS,
            expected=integer(studies[0], "NumberOfStudyRelatedInstances"),
        )
        if instances:
            instances[0] = {**instances[0], **self._metadata(uid, instances[0])}
        return studies[0], series, instances

    def _metadata(self, study_uid: str, instance: DicomJson) -> DicomJson:
        """All attributes of one instance: what QIDO cannot give (ProcedureCodeSequence...)."""
        series_uid, sop_uid = text(instance, "SeriesInstanceUID"), text(instance, "SOPInstanceUID")
        if series_uid is None or sop_uid is None:
            return {}
        try:
            return self.client.retrieve_instance_metadata(study_uid, series_uid, sop_uid)
        except OrthancNotFound:
            return {}


def _parse_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        value = int(cursor)
    except ValueError:
        raise ValueError(
            f"orthanc cursor must be a change Seq (an integer), got {cursor!r}"
        ) from None
    if value < 0:
        raise ValueError(f"orthanc cursor must not be negative, got {cursor!r}")
    return value
