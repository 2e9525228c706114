"""`cdss seed`: one synthetic cohort written into all three sources through their own APIs.

Patients go to OpenEMR first (the EHR owns identity), then their lab panels to SENAITE and their
chest CTs to Orthanc; the ground truth is written last, beside them. Each target is optional, so
a site can seed only the systems it runs.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from adapters.orthanc.client import OrthancClient
from simulators.cohort.ct import ct_series
from simulators.cohort.model import CohortGenerator, SyntheticPatient
from simulators.cohort.openemr_writer import OpenEMRWriter
from simulators.cohort.senaite_writer import SenaiteWriter
from simulators.cohort.truth import write_truth

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Targets:
    openemr_url: str | None = None
    openemr_simulator: bool = True
    senaite_url: str | None = None  # the site URL; the JSON API lives under /@@API/senaite/v1
    senaite_auth: tuple[str, str] = ("admin", "admin")
    orthanc_url: str | None = None
    orthanc_auth: tuple[str, str] | None = None


@dataclass(slots=True)
class SeedSummary:
    patients: int = 0
    lab_results: int = 0
    samples: int = 0
    ct_studies: int = 0
    ct_instances: int = 0
    cancers: int = 0
    truth_file: Path | None = None
    by_target: dict[str, int] = field(default_factory=dict)


def default_index_date(today: date | None = None) -> date:
    """Far enough back that every patient's 12-month outcome window has closed."""
    return (today or date.today()) - timedelta(days=400)


def _dicom_bytes(ds: object) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)  # type: ignore[attr-defined]
    return buf.getvalue()


def seed(
    n: int,
    seed_value: int,
    targets: Targets,
    out_dir: Path,
    *,
    index_date: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    index = index_date or default_index_date()
    gen = CohortGenerator(seed_value, index)
    emr = (
        OpenEMRWriter(targets.openemr_url, simulator=targets.openemr_simulator)
        if targets.openemr_url
        else None
    )
    lis = (
        SenaiteWriter(targets.senaite_url, auth=targets.senaite_auth)
        if targets.senaite_url
        else None
    )
    pacs = (
        OrthancClient(targets.orthanc_url, auth=targets.orthanc_auth)
        if targets.orthanc_url
        else None
    )
    summary, patients = SeedSummary(), []
    try:
        for i in range(n):
            p = gen.patient(i + 1)
            patients.append(p)
            _write_one(p, seed_value, emr, lis, pacs, summary)
            if progress is not None:
                progress(i + 1)
    finally:
        for closer in (emr, lis, pacs):
            if closer is not None:
                closer.close()
    summary.truth_file = out_dir / "ground_truth.csv"
    write_truth(summary.truth_file, patients, seed_value, index)
    return summary


def _write_one(
    p: SyntheticPatient,
    seed_value: int,
    emr: OpenEMRWriter | None,
    lis: SenaiteWriter | None,
    pacs: OrthancClient | None,
    summary: SeedSummary,
) -> None:
    summary.patients += 1
    summary.cancers += int(p.cancer)
    if emr is not None:
        emr.write(p)
    if lis is not None:
        samples, results = lis.write(p)
        summary.samples += samples
        summary.lab_results += results
    if pacs is not None and p.ct is not None:
        series = ct_series(p, seed_value)
        for ds in series:
            pacs.upload(_dicom_bytes(ds))
        summary.ct_studies += 1
        summary.ct_instances += len(series)
