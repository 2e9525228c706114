"""The `dicomweb` profile's cursor stays small as the PACS grows (issue 10 follow-up): studies
are de-duplicated against the facade, the cursor keeps only the window's studies, the sync's
`last_report` (which copies the cursor) does not grow either, and the reconciliation reads the
PACS page by page. Against the real Orthanc's DICOMweb plugin, its change feed unused."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.dicomweb.client import DicomwebClient
from adapters.dicomweb.cursor import PollCursor
from adapters.dicomweb.protocol import DicomJson
from adapters.dicomweb.reconcile import SeenUids
from adapters.dicomweb.source import DicomwebSource
from fhir_facade.search.query import parse_search
from fhir_facade.store.sql_store import SqlStore
from fhir_facade.sync.engine import cursor_key, sync_source
from tests.support import orthanc
from tests.support.dicom import CtSeriesSpec, ct_series

PAGE = 3


class CountingClient(DicomwebClient):
    """The real client, noting the size of each study listing it received."""

    listings: list[int]

    def search_for_studies(
        self,
        *,
        search_filters: Mapping[str, Any] | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[DicomJson]:
        found = super().search_for_studies(
            search_filters=search_filters, fields=fields, limit=limit, offset=offset
        )
        if "StudyInstanceUID" not in (search_filters or {}):
            self.listings.append(len(found))
        return found


@pytest.fixture(scope="module")
def server() -> Iterator[orthanc.OrthancServer]:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required for the DICOMweb profile tests: {reason}")
    with orthanc.orthanc(dicom_server=False) as running:
        yield running


def stow(server: orthanc.OrthancServer, specs: list[CtSeriesSpec]) -> None:
    with DicomwebClient(server.dicomweb_url, auth=server.auth, timeout=10) as client:
        client.store_instances([ds for spec in specs for ds in ct_series(spec)])


def facade_studies(store: SqlStore) -> int:
    query = parse_search("ImagingStudy", [("_summary", "count")])
    with store.read_unit() as unit:
        total = unit.search(query).total
    assert total is not None
    return total


def test_cursor_stays_bounded_as_studies_accumulate(
    server: orthanc.OrthancServer, tmp_path: Path
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    now = time.time()
    today = datetime.now().strftime("%Y%m%d")
    stow(server, [CtSeriesSpec(patient_id="MRN-CB-T", study_date=today, slices=1)])
    sizes, reports, old_uids = [], [], []
    client = CountingClient(server.dicomweb_url, auth=server.auth, timeout=10, page_size=PAGE)
    client.listings = []
    try:
        for round_ in range(3):
            batch = [
                CtSeriesSpec(patient_id=f"MRN-CB-{round_}-{n}", study_date="20030303", slices=1)
                for n in range(8)
            ]
            stow(server, batch)  # old dates: only a reconciliation finds them
            old_uids += [s.study_uid for s in batch]
            now += 7200  # each run is a full reconciliation
            source = DicomwebSource(
                client,
                dicomweb_public_url="http://cdss/dicom-web",
                base_url=server.dicomweb_url,
                overlap=3600,
                reconcile_interval=3600,
                clock=lambda t=now: t,  # type: ignore[misc]
            )
            report = sync_source(store, source)
            assert report.counts["ImagingStudy"].created == (9 if round_ == 0 else 8)
            assert facade_studies(store) == 1 + 8 * (round_ + 1)
            with store.read_unit() as unit:
                cursor = unit.get_state(cursor_key("pacs")) or ""
                reports.append(len(unit.get_state("sync:pacs:last_report") or ""))
            sizes.append(len(cursor))
            assert list(PollCursor.decode(cursor).recent) and not any(u in cursor for u in old_uids)
        again = sync_source(store, source)  # nothing new: de-duplicated by the facade
        assert again.counts["ImagingStudy"].created == 0
    finally:
        client.close()
        store.close()
    assert sizes[0] == sizes[1] == sizes[2], sizes  # only today's study is in the window
    # the report copies the cursor: it does not grow with the studies either (seconds vary)
    assert abs(reports[2] - reports[1]) < 16 and reports[2] < reports[0] + 16, reports
    assert client.listings and max(client.listings) <= PAGE  # paged, never all at once


def test_seen_set_is_eight_bytes_a_study() -> None:
    seen = SeenUids()
    uids = [f"1.2.826.0.1.3680043.8.498.{n}" for n in range(50_000)]
    seen.add(uids[:25_000])
    seen.add(uids[25_000:])
    assert len(seen) == 50_000 and seen.nbytes == 8 * 50_000
    assert all(u in seen for u in uids[::997])
    assert "1.2.3.4.5" not in seen and f"{uids[0]}.1" not in seen


def test_a_version_1_cursor_keeps_its_window_and_drops_its_study_list() -> None:
    old = '{"v":1,"window_start":"2026-01-02T03:04:05","reconciled_at":12.5,"known":{"1.2":3}}'
    cursor = PollCursor.decode(old)
    assert cursor.window_start == datetime(2026, 1, 2, 3, 4, 5) and cursor.reconciled_at == 12.5
    assert cursor.recent == {} and "1.2" not in cursor.encode()
    assert PollCursor.decode('{"v":9}') == PollCursor()  # unknown: a fresh full listing
