"""What every source adapter gives the sync: batches of mapped FHIR resources and a cursor.

An adapter's `client.py` does the I/O, its `mapper.py` turns one source payload into FHIR R4 JSON
(pure), and its `source.py` pulls changes since a cursor and yields them as Batches. The sync
stores each batch and its cursor in one transaction, so a crash never loses or repeats a batch.

Patient identity across sources is by medical record number (OpenEMR `pubpid` = SENAITE
`MedicalRecordNumber` = DICOM PatientID). Mappers never guess a facade Patient id for another
source's patient: they emit a logical reference, `{"identifier": {"system": MRN_SYSTEM, "value":
mrn}}`, and the sync's identity linker resolves it to `Patient/<id>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

MRN_SYSTEM = "urn:cdss:mrn"
"""Identifier system of the hospital MRN shared by all sources (the facade's own namespace)."""

SOURCE_TAG_SYSTEM = "urn:cdss:source"
"""meta.tag system naming the source system a resource came from (code: openemr|senaite|orthanc)."""

LINK_TAG_SYSTEM = "urn:cdss:link"
"""meta.tag system marking a resource whose patient could not be linked (code: unlinked)."""

_ID_NAMESPACE = uuid.UUID("6f1c3f0e-9a4e-4e53-9d7c-2f2b6d1a0c11")


class Closing:
    """`with Client(...) as client:` closes the client's connections at the end; the client
    (SENAITE, Orthanc, DICOMweb) defines `close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def source_id(source: str, kind: str, key: str) -> str:
    """A stable facade id for a source record, so re-syncing the same record upserts it."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{source}:{kind}:{key}"))


def mrn_reference(mrn: str, display: str | None = None) -> dict[str, Any]:
    """A logical Patient reference by MRN, resolved by the sync's identity linker."""
    ref: dict[str, Any] = {"type": "Patient", "identifier": {"system": MRN_SYSTEM, "value": mrn}}
    if display:
        ref["display"] = display
    return ref


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source record that could not be mapped: kept in the sync report, never dropped silently."""

    source_ref: str  # what the source calls it, e.g. "AnalysisRequest/H2O-0001"
    reason: str


@dataclass(slots=True)
class Batch:
    resources: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    cursor: str | None = None  # persisted with the batch; the next pull starts after it


class Source(Protocol):
    """A source system the sync pulls from."""

    name: str  # "openemr" | "senaite" | "orthanc"
    base_url: str  # goes into meta.source of every resource from it

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        """Changes after `cursor` (None: everything), oldest first, in batches."""
        ...
