"""What the facade already holds of the PACS, asked of the facade itself (no cursor state).

De-duplication and deletion detection need, for a listed StudyInstanceUID, the instance count
last synced, and, at reconciliation, every synced StudyInstanceUID. Both are ImagingStudy
search results: the `identifier` token (`urn:dicom:uid|urn:oid:<uid>`, the mapper's official
identifier) is indexed by the store, so a page of listed studies costs one indexed query per
100 UIDs, and the reconciliation pages through the facade's ImagingStudies by keyset. No
migration, no extra table: the facade is the record, and it commits with the cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import orjson

from fhir_facade.search.query import parse_search
from fhir_facade.store.base import Store

logger = logging.getLogger(__name__)

DICOM_UID = "urn:dicom:uid"
OID = "urn:oid:"
LOOKUP_CHUNK = 100  # values in one token parameter (fhir_facade.search.query.Limits.max_values)
PAGE = 1000  # ImagingStudies per reconciliation page (Limits.max_count)


class StudyIndex(Protocol):
    def counts(self, uids: Sequence[str]) -> dict[str, int]:
        """numberOfInstances of the facade's ImagingStudy for those of `uids` it holds."""
        ...

    def studies(self) -> Iterator[tuple[str, str]]:
        """(StudyInstanceUID, ImagingStudy id) of every study the facade holds, page by page."""
        ...


def study_uid(resource: dict[str, Any]) -> str | None:
    for ident in resource.get("identifier") or []:
        value = ident.get("value")
        if ident.get("system") == DICOM_UID and isinstance(value, str):
            return value.removeprefix(OID)
    return None


class FacadeIndex:
    """StudyIndex over the facade's store (whatever its backend: the search API is the same)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def counts(self, uids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        wanted = set(uids)
        for start in range(0, len(uids), LOOKUP_CHUNK):
            chunk = uids[start : start + LOOKUP_CHUNK]
            tokens = ",".join(f"{DICOM_UID}|{OID}{uid}" for uid in chunk)
            query = parse_search("ImagingStudy", [("identifier", tokens)])
            query.count, query.total = 2 * len(chunk), "none"
            with self.store.read_unit() as unit:
                matches = unit.search(query).matches
            for stored in matches:
                resource = orjson.loads(stored.content or b"{}")
                uid, count = study_uid(resource), resource.get("numberOfInstances")
                if uid in wanted and isinstance(count, int):
                    found[uid] = count
        return found

    def studies(self) -> Iterator[tuple[str, str]]:
        after: tuple[object, ...] | None = None
        while True:
            query = parse_search("ImagingStudy", [("identifier", f"{DICOM_UID}|")])
            query.count, query.total, query.after = PAGE, "none", after
            with self.store.read_unit() as unit:
                page = unit.search(query)
            for stored in page.matches:
                uid = study_uid(orjson.loads(stored.content or b"{}"))
                if uid is not None:
                    yield uid, stored.id
            if page.next_position is None or not page.matches:
                return
            after = page.next_position


class NoIndex:
    """No facade attached (the source used on its own): nothing is known to be synced, so
    every listed study outside the cursor's window is read, and no deletion is decided."""

    def counts(self, uids: Sequence[str]) -> dict[str, int]:  # noqa: ARG002 - knows none
        return {}

    def studies(self) -> Iterator[tuple[str, str]]:
        return iter(())
