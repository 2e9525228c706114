"""The imaging AI pipeline: one stable CT study in the PACS -> a finding in FHIR and in DICOM.

Steps, each timed (the benchmark reports them):
1. fetch: the study's ImagingStudy from the facade (the job needs it, so a study not synced
   yet is retried before any pixel moves), the CT series it lists (QIDO-RS only when it lists
   none), then that series in one WADO-RS request, pixel data included, through the site's
   PACS client (`adapters.dicomweb.factory.pacs_client`: Orthanc or any standard DICOMweb
   server such as dcm4chee-arc, CDSS_PACS_PROFILE). One request, not metadata plus one per
   frame: the per-request round trips were two thirds of the pipeline's time;
2. volume: pydicom datasets -> one HU volume (models/imaging/volume.py: sorted by position,
   spacing from the headers; non-CT, missing slices, bad pixel data are refused);
3. infer: sliding-window inference of the promoted model;
4. write: Observation + DiagnosticReport into the facade's store through its normal write path
   (validated, versioned, one unit), linked to the ImagingStudy; meanwhile, on a second thread,
   a TID 1500 SR built and stored back into the PACS by STOW-RS (the PACS's work overlaps the
   store's). The job is done only when both are. Where CDSS_REPORTS_EXPORT names the RAD
   category, the orders worker sends the report to OpenEMR as a document
   (fhir_facade/orders/reports.py): the pipeline only has to write it.

Every write is idempotent (ids and SR UIDs derive from study and model version), so a job run
again after a crash updates in place. Errors are sorted into `BadInput` (the study cannot be
analysed: the job fails with the reason), `NotReady` (its ImagingStudy is not in the facade
yet) and anything else (both retried by the worker).
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
from pydicom.dataset import Dataset

from adapters.dicomweb.errors import PacsError, PacsUnavailable
from adapters.dicomweb.protocol import PacsClient
from adapters.orthanc.payloads import integer, text
from fhir_facade.search.query import parse_search
from fhir_facade.store.base import Store
from models.imaging import fhir, sr
from models.imaging.infer import Finding, Predictor
from models.imaging.volume import VolumeError, build_volume

log = logging.getLogger(__name__)

SERIES_FIELDS = ("Modality", "NumberOfSeriesRelatedInstances", "SeriesDescription")


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

    def __init__(self, store: Store, pacs: PacsClient, predictor: Predictor) -> None:
        self.store = store
        self.pacs = pacs
        self.predictor = predictor

    def process(self, study_uid: str) -> Outcome:
        timings = Timings()
        study, datasets = _timed(timings, "fetch", lambda: self.fetch_study(study_uid))
        try:
            volume = _timed(timings, "volume", lambda: build_volume(datasets))
        except VolumeError as exc:
            raise BadInput(f"study {study_uid}: {exc}") from None
        finding: Finding = _timed(timings, "infer", lambda: self.predictor.predict(volume))
        outcome: Outcome = _timed(
            timings, "write", lambda: self.write(_context(study_uid, study), finding, datasets)
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

    def imaging_study(self, study_uid: str) -> dict[str, Any]:
        """The facade's ImagingStudy of `study_uid` (found by its `urn:dicom:uid` identifier)."""
        ident = f"{fhir_identifier_system()}|urn:oid:{study_uid}"
        with self.store.read_unit() as unit:
            page = unit.search(parse_search("ImagingStudy", [("identifier", ident)]))
        if not page.matches:
            raise NotReady(f"no ImagingStudy with identifier {ident} in the facade yet")
        study: dict[str, Any] = orjson.loads(page.matches[0].content or b"{}")
        return study

    def ct_series_uid(self, study_uid: str, study: dict[str, Any]) -> str:
        """The study's largest CT series, as the ImagingStudy lists its series (they come from
        the PACS at sync time); QIDO-RS asks the PACS only when the resource lists none."""
        listed = [
            (_modality(s), s.get("numberOfInstances") or 0, s.get("uid"))
            for s in study.get("series") or []
            if isinstance(s, dict) and isinstance(s.get("uid"), str)
        ]
        if not listed:
            found = self.pacs.search_for_series(study_uid, fields=SERIES_FIELDS)
            listed = [
                (
                    text(s, "Modality"),
                    integer(s, "NumberOfSeriesRelatedInstances") or 0,
                    text(s, "SeriesInstanceUID"),
                )
                for s in found
            ]
        if not listed:
            raise BadInput(f"study {study_uid}: not found in the PACS, or it has no series")
        cts = [(n, uid) for modality, n, uid in listed if modality == "CT" and uid]
        if not cts:
            modalities = sorted({modality or "?" for modality, _, _ in listed})
            raise BadInput(
                f"study {study_uid} has no CT series (modalities: {', '.join(modalities)})"
            )
        return str(max(cts, key=lambda c: int(c[0]))[1])

    def fetch(self, study_uid: str, series_uid: str) -> list[Dataset]:
        """The series' instances as pydicom datasets with their pixel data, in one request."""
        try:
            datasets = self.pacs.retrieve_series(study_uid, series_uid)
        except PacsUnavailable:
            raise
        except PacsError as exc:
            raise BadInput(
                f"study {study_uid}: the PACS cannot serve series {series_uid} ({exc})"
            ) from None
        if not datasets:
            raise BadInput(f"study {study_uid}: series {series_uid} has no instances")
        return datasets

    def fetch_study(self, study_uid: str) -> tuple[dict[str, Any], list[Dataset]]:
        """The ImagingStudy and its CT series' instances: the fetch step."""
        study = self.imaging_study(study_uid)
        return study, self.fetch(study_uid, self.ct_series_uid(study_uid, study))

    # -- 4. write ---------------------------------------------------------------------------

    def write(
        self, ctx: fhir.StudyContext, finding: Finding, datasets: Sequence[Dataset]
    ) -> Outcome:
        """The FHIR unit on this thread while the SR is built and STOWed on another: the
        PACS stores while the facade does. Either failing fails the step (the job retries;
        both writes are idempotent)."""
        observation, report = fhir.resources(finding, ctx)
        with ThreadPoolExecutor(1, thread_name_prefix="imaging-sr") as pool:
            stored = pool.submit(self.store_sr, ctx.study_uid, finding, datasets)
            try:
                with self.store.unit() as unit:
                    for resource in (observation, report):
                        unit.update(resource)
            finally:
                sr_uid = stored.result()  # waits; raises the SR's error, if any
        return Outcome(finding, report["id"], observation["id"], sr_uid)

    def store_sr(self, study_uid: str, finding: Finding, datasets: Sequence[Dataset]) -> str:
        """The TID 1500 SR by STOW-RS; its SOP Instance UID."""
        document = sr.measurement_report(finding, sr.evidence(datasets))
        answer = self.pacs.store_instances([document])
        failed = answer.get("00081198", {}).get("Value")
        if failed:
            raise PacsError(f"STOW-RS refused the SR for study {study_uid}: {failed}")
        return str(document.SOPInstanceUID)


def _modality(series: dict[str, Any]) -> str | None:
    code = (series.get("modality") or {}).get("code")
    return code if isinstance(code, str) else None


def _context(study_uid: str, study: dict[str, Any]) -> fhir.StudyContext:
    subject = (study.get("subject") or {}).get("reference")
    return fhir.StudyContext(
        study_uid=study_uid,
        imaging_study_id=str(study["id"]),
        patient=subject if isinstance(subject, str) and subject.startswith("Patient/") else None,
        effective=study.get("started"),
        issued=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def fhir_identifier_system() -> str:
    from models.jobs import DICOM_UID_SYSTEM

    return DICOM_UID_SYSTEM
