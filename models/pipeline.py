"""The imaging AI pipeline: one stable CT study in the PACS -> a finding in FHIR and in DICOM.

Steps, each timed (the benchmark reports them):
1. fetch: the study's CT series by DICOMweb (QIDO-RS series, WADO-RS metadata, WADO-RS frames
   in parallel) through the site's PACS client (`adapters.dicomweb.factory.pacs_client`: Orthanc
   or any standard DICOMweb server such as dcm4chee-arc, CDSS_PACS_PROFILE);
2. volume: pydicom datasets -> one HU volume (models/imaging/volume.py: sorted by position,
   spacing from the headers; non-CT, missing slices, bad pixel data are refused);
3. infer: sliding-window inference of the promoted model;
4. write: Observation + DiagnosticReport into the facade's store through its normal
   write path (validated, versioned, one unit), linked to the ImagingStudy found by its
   `urn:dicom:uid` identifier; then a TID 1500 SR stored back into the PACS by STOW-RS.
   Where CDSS_REPORTS_EXPORT names the RAD category, the orders worker sends the report to
   OpenEMR as a document (fhir_facade/orders/reports.py): the pipeline only has to write it.

Every write is idempotent (ids and SR UIDs derive from study and model version), so a job run
again after a crash updates in place. Errors are sorted into `BadInput` (the study cannot be
analysed: the job fails with the reason) and anything else (retried by the worker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from adapters.dicomweb.errors import PacsError, PacsUnavailable
from adapters.dicomweb.protocol import DicomJson, PacsClient
from adapters.orthanc.payloads import integer, text
from fhir_facade.search.query import parse_search
from fhir_facade.store.base import Store
from models.imaging import fhir, sr
from models.imaging.infer import Finding, Predictor
from models.imaging.volume import VolumeError, build_volume

log = logging.getLogger(__name__)

SERIES_FIELDS = ("Modality", "NumberOfSeriesRelatedInstances", "SeriesDescription")
PIXEL_DATA = "7FE00010"


class BadInput(ValueError):
    """The study cannot be analysed as it is (wrong modality, gaps, corrupt data): retrying
    would give the same answer, so the job fails with this reason."""


class NotReady(RuntimeError):
    """Something the job needs is not there yet (the ImagingStudy not synced): retry later."""


@dataclass(slots=True)
class Timings:
    fetch: float = 0.0
    volume: float = 0.0
    infer: float = 0.0
    write: float = 0.0

    def as_json(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 4) for k in ("fetch", "volume", "infer", "write")}


@dataclass(slots=True)
class Outcome:
    finding: Finding
    report_id: str
    observation_id: str
    sr_sop_uid: str
    timings: Timings = field(default_factory=Timings)

    def as_json(self) -> dict[str, Any]:
        return {
            "probability": round(self.finding.probability, 4),
            "present": self.finding.present,
            "model": self.finding.model,
            "series_uid": self.finding.series_uid,
            "diagnostic_report": f"DiagnosticReport/{self.report_id}",
            "observation": f"Observation/{self.observation_id}",
            "sr_sop_instance_uid": self.sr_sop_uid,
            "seconds": self.timings.as_json(),
        }


def _timed(timings: Timings, step: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        return fn()
    finally:
        setattr(timings, step, getattr(timings, step) + time.perf_counter() - started)


class ImagingPipeline:
    """Runs studies through fetch -> volume -> infer -> write; one per worker thread."""

    def __init__(
        self, store: Store, pacs: PacsClient, predictor: Predictor, *, fetchers: int = 16
    ) -> None:
        self.store = store
        self.pacs = pacs
        self.predictor = predictor
        self.fetchers = max(1, fetchers)

    def process(self, study_uid: str) -> Outcome:
        timings = Timings()
        datasets = _timed(timings, "fetch", lambda: self.fetch(study_uid))
        try:
            volume = _timed(timings, "volume", lambda: build_volume(datasets))
        except VolumeError as exc:
            raise BadInput(f"study {study_uid}: {exc}") from None
        finding: Finding = _timed(timings, "infer", lambda: self.predictor.predict(volume))
        outcome: Outcome = _timed(
            timings, "write", lambda: self.write(study_uid, finding, datasets)
        )
        outcome.timings = timings
        log.info(
            "study %s: nodule %s (p=%.3f) by %s in %s",
            study_uid,
            "present" if finding.present else "absent",
            finding.probability,
            finding.model,
            timings.as_json(),
        )
        return outcome

    # -- 1. fetch ---------------------------------------------------------------------------

    def ct_series(self, study_uid: str) -> DicomJson:
        series = self.pacs.search_for_series(study_uid, fields=SERIES_FIELDS)
        if not series:
            raise BadInput(f"study {study_uid}: not found in the PACS, or it has no series")
        cts = [s for s in series if text(s, "Modality") == "CT"]
        if not cts:
            found = sorted({text(s, "Modality") or "?" for s in series})
            raise BadInput(f"study {study_uid} has no CT series (modalities: {', '.join(found)})")
        return max(cts, key=lambda s: integer(s, "NumberOfSeriesRelatedInstances") or 0)

    def fetch(self, study_uid: str) -> list[Dataset]:
        """The CT series' instances as pydicom datasets with their pixel data."""
        series_uid = text(self.ct_series(study_uid), "SeriesInstanceUID") or ""
        metadata = [
            m
            for m in self.pacs.retrieve_study_metadata(study_uid)
            if text(m, "SeriesInstanceUID") == series_uid
        ]
        if not metadata:
            raise BadInput(f"study {study_uid}: series {series_uid} has no instance metadata")
        with ThreadPoolExecutor(self.fetchers, thread_name_prefix="imaging-fetch") as pool:
            return list(pool.map(lambda m: self._instance(study_uid, series_uid, m), metadata))

    def _instance(self, study_uid: str, series_uid: str, meta: DicomJson) -> Dataset:
        sop = text(meta, "SOPInstanceUID") or "?"
        try:
            ds = Dataset.from_json(
                {k: v for k, v in meta.items() if k != PIXEL_DATA},
                bulk_data_uri_handler=lambda *_: b"",
            )
        except Exception as exc:  # pydicom raises several types for malformed DICOM JSON
            raise BadInput(f"instance {sop}: unreadable metadata ({exc})") from None
        if str(getattr(ds, "Modality", "")) != "CT":
            return ds  # refused by build_volume with the reason; no frame needed
        try:
            frames = self.pacs.retrieve_frames(study_uid, series_uid, sop, (1,))
        except PacsUnavailable:
            raise
        except PacsError as exc:
            raise BadInput(
                f"instance {sop}: the PACS cannot serve its pixel data ({exc})"
            ) from None
        if len(frames) != 1:
            raise BadInput(f"instance {sop}: expected one frame, the PACS sent {len(frames)}")
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # frames come uncompressed
        ds.PixelData = bytes(frames[0])  # dicomweb-client gives a bytearray
        return ds

    # -- 4. write ---------------------------------------------------------------------------

    def context(self, study_uid: str) -> fhir.StudyContext:
        ident = f"{fhir_identifier_system()}|urn:oid:{study_uid}"
        with self.store.read_unit() as unit:
            page = unit.search(parse_search("ImagingStudy", [("identifier", ident)]))
        if not page.matches:
            raise NotReady(f"no ImagingStudy with identifier {ident} in the facade yet")
        study = orjson.loads(page.matches[0].content or b"{}")
        subject = (study.get("subject") or {}).get("reference")
        return fhir.StudyContext(
            study_uid=study_uid,
            imaging_study_id=str(study["id"]),
            patient=subject
            if isinstance(subject, str) and subject.startswith("Patient/")
            else None,
            effective=study.get("started"),
            issued=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def write(self, study_uid: str, finding: Finding, datasets: Sequence[Dataset]) -> Outcome:
        ctx = self.context(study_uid)
        observation, report = fhir.resources(finding, ctx)
        with self.store.unit() as unit:
            for resource in (observation, report):
                unit.update(resource)
        evidence = [_without_pixels(ds) for ds in datasets]
        document = sr.measurement_report(finding, evidence)
        answer = self.pacs.store_instances([document])
        failed = answer.get("00081198", {}).get("Value")
        if failed:
            raise PacsError(f"STOW-RS refused the SR for study {study_uid}: {failed}")
        return Outcome(finding, report["id"], observation["id"], str(document.SOPInstanceUID))


def fhir_identifier_system() -> str:
    from models.jobs import DICOM_UID_SYSTEM

    return DICOM_UID_SYSTEM


def _without_pixels(ds: Dataset) -> Dataset:
    copy = Dataset()
    for element in ds:
        if element.keyword != "PixelData":
            copy.add(element)
    return copy
