"""Deletion detection for the `dicomweb` profile: which synced studies left the PACS.

A full listing is walked page by page (limit/offset), never held whole: each listed
StudyInstanceUID is remembered as a 64-bit hash (8 bytes a study, sorted in a numpy array:
8 MB for a million studies). Afterwards the facade's ImagingStudies are paged through
(adapters/dicomweb/facade.py) and those whose UID was not listed are candidates. A hash
collision can only make a deleted study look listed, so it is kept one more reconciliation:
never a wrong deletion. Paging by offset while the PACS changes can skip a study (one deleted
before it shifts the pages), so each candidate is confirmed by a QIDO query for its UID before
it is deleted. A listing that would delete more than `max_fraction` of the facade's studies (at
least DELETE_GUARD_MIN) is refused with an error log line: an empty answer from a misconfigured
PACS must not wipe the facade.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections.abc import Iterable

import numpy as np

from adapters.dicomweb.facade import StudyIndex
from adapters.dicomweb.protocol import PacsClient
from adapters.orthanc.payloads import text

logger = logging.getLogger(__name__)

DELETE_GUARD_MIN = 10


def _hash(uid: str) -> int:
    return int.from_bytes(hashlib.blake2b(uid.encode(), digest_size=8).digest(), "big")


class SeenUids:
    """A compact set of StudyInstanceUIDs (64-bit hashes) seen in a listing."""

    def __init__(self) -> None:
        self._pending = array("Q")
        self._sorted = np.empty(0, dtype=np.uint64)

    def add(self, uids: Iterable[str]) -> None:
        self._pending.extend(_hash(uid) for uid in uids)

    def __len__(self) -> int:
        self._settle()
        return int(self._sorted.size)

    def _settle(self) -> None:
        if self._pending:
            merged = np.concatenate([self._sorted, np.frombuffer(self._pending, np.uint64)])
            self._sorted = np.unique(merged)
            self._pending = array("Q")

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, str):
            return False
        self._settle()
        key = np.uint64(_hash(uid))
        at = int(np.searchsorted(self._sorted, key))
        return at < self._sorted.size and bool(self._sorted[at] == key)

    @property
    def nbytes(self) -> int:
        return int(self._sorted.nbytes) + self._pending.itemsize * len(self._pending)


def gone_studies(
    client: PacsClient,
    index: StudyIndex,
    seen: SeenUids,
    *,
    max_fraction: float,
    where: str,
) -> list[tuple[str, str]]:
    """(StudyInstanceUID, ImagingStudy id) of the studies synced into the facade and
    confirmed gone from the PACS."""
    total, candidates = 0, []
    for uid, rid in index.studies():
        total += 1
        if uid not in seen:
            candidates.append((uid, rid))
    if not candidates:
        return []
    if len(candidates) >= DELETE_GUARD_MIN and len(candidates) > max_fraction * total:
        logger.error(
            "pacs %s: the full listing lacks %d of %d synced studies; refusing to delete "
            "them (more than %.0f%%): check the PACS, or raise CDSS_PACS_MAX_DELETE_FRACTION",
            where,
            len(candidates),
            total,
            max_fraction * 100,
        )
        return []
    gone = [(uid, rid) for uid, rid in candidates if not _still_there(client, uid)]
    for uid, _ in gone:
        logger.info("pacs %s: study %s deleted on the PACS", where, uid)
    if len(gone) < len(candidates):
        logger.info(
            "pacs %s: %d studies missed by the paged listing are still there",
            where,
            len(candidates) - len(gone),
        )
    return gone


def _still_there(client: PacsClient, uid: str) -> bool:
    """A QIDO query for this one study (a server ignoring the filter is read for the UID)."""
    found = client.search_for_studies(
        search_filters={"StudyInstanceUID": uid}, fields=("StudyInstanceUID",), limit=10
    )
    return any(text(ds, "StudyInstanceUID") == uid for ds in found)
