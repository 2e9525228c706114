"""The DICOMweb surface every imaging consumer codes against (viewer proxy, AI fetch, SR write).

Both `adapters.orthanc.client.OrthancClient` and `adapters.dicomweb.client.DicomwebClient` have
these methods with these signatures; `adapters.dicomweb.factory.pacs_client` returns the one the
site's profile asks for. Errors are `adapters.dicomweb.errors.PacsError` and its subclasses
(Orthanc's own errors subclass them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydicom.dataset import Dataset

DicomJson = dict[str, Any]

OCTET_STREAM = "application/octet-stream"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


class PacsClient(Protocol):
    dicomweb_url: str

    def close(self) -> None: ...

    def search_for_studies(
        self,
        *,
        search_filters: Mapping[str, Any] | None = None,
        fields: Sequence[str] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[DicomJson]: ...

    def search_for_series(
        self,
        study_uid: str,
        *,
        fields: Sequence[str] = (),
        search_filters: Mapping[str, Any] | None = None,
        expected: int | None = None,
    ) -> list[DicomJson]: ...

    def search_for_instances(
        self,
        study_uid: str,
        series_uid: str | None = None,
        *,
        fields: Sequence[str] = (),
        expected: int | None = None,
    ) -> list[DicomJson]: ...

    def retrieve_study_metadata(self, study_uid: str) -> list[DicomJson]: ...

    def retrieve_instance_metadata(
        self, study_uid: str, series_uid: str, sop_uid: str
    ) -> DicomJson: ...

    def retrieve_frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_numbers: Sequence[int] = (1,),
        *,
        media_type: str = OCTET_STREAM,
    ) -> list[bytes]: ...

    def retrieve_series(
        self, study_uid: str, series_uid: str, *, transfer_syntax: str = ...
    ) -> list[Dataset]: ...

    def store_instances(self, datasets: Sequence[Dataset]) -> DicomJson: ...
