"""Training and test studies from the synthetic cohort, with the cohort's ground truth.

The default source draws the cohort with the same generator and seed as `cdss seed`, renders each
chest CT as the same DICOM instances it uploads to Orthanc (simulators/cohort/ct.py) and reads
them back through `build_volume`, so the model learns from exactly the bytes the pipeline will
fetch from the PACS. The truth (nodule present, centre, diameter) is the generator's own record,
the same values `ground_truth.csv` holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydicom.uid import generate_uid

from models.imaging.volume import Volume, build_volume
from simulators.cohort import ct
from simulators.cohort.ct import ct_series, nodule_voxel
from simulators.cohort.model import CohortGenerator, SyntheticPatient

DEFAULT_INDEX_DATE = date(2025, 6, 1)


@dataclass(frozen=True, slots=True)
class Study:
    """One CT study with its truth: label 1 when a nodule is present, its centre in LPS mm."""

    mrn: str
    volume: Volume
    label: int
    centre_mm: tuple[float, float, float] | None
    diameter_mm: float | None


def rendered_volume(patient: SyntheticPatient, seed: int) -> Volume:
    """The voxels `ct_series` would encode, without the DICOM round trip (~5x faster): the same
    generator state, the same int16 cast, the geometry ct.py writes. A test checks that both
    paths give identical volumes."""
    assert patient.ct is not None
    rng = np.random.default_rng([seed, int.from_bytes(patient.mrn.encode()[-6:], "big")])
    hu = ct.volume(patient.ct, rng).astype(np.int16).astype(np.float32)  # (slices, rows, cols)
    affine = np.diag([ct.PIXEL_MM, ct.PIXEL_MM, ct.SLICE_MM, 1.0])
    affine[:3, 3] = [-ct.COLS * ct.PIXEL_MM / 2, -ct.ROWS * ct.PIXEL_MM / 2, 0.0]
    study_uid, series_uid = ct.uids(seed, patient.mrn)
    sops = tuple(
        generate_uid(entropy_srcs=["cdss-cohort", str(seed), patient.mrn, str(k)])
        for k in range(ct.SLICES)
    )
    return Volume(np.ascontiguousarray(hu.transpose(2, 1, 0)), affine, study_uid, series_uid, sops)


def cohort_studies(
    n_studies: int,
    seed: int,
    *,
    index_date: date = DEFAULT_INDEX_DATE,
    via_dicom: bool = True,
    balanced: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Study]:
    """The first `n_studies` patients of the cohort `seed` who have a chest CT.

    `via_dicom`: read each series back from its DICOM instances (the pipeline's path) rather
    than from the rendered voxels. `balanced`: skip a study without a nodule while there are
    more such studies than studies with one (small test sets then hold both classes).
    """
    gen = CohortGenerator(seed, index_date)
    found, n, balance = 0, 0, 0
    while found < n_studies:
        n += 1
        patient = gen.patient(n)
        if patient.ct is None:
            continue
        has_nodule = patient.ct.nodule is not None
        if balanced and not has_nodule and balance > 0:
            continue
        balance += -1 if has_nodule else 1
        if via_dicom:
            volume = build_volume(ct_series(patient, seed))
        else:
            volume = rendered_volume(patient, seed)
        voxel = nodule_voxel(patient.ct)
        centre = None
        if voxel is not None:
            k, j, i = voxel
            centre = volume.to_patient((i, j, k))
        nodule = patient.ct.nodule
        found += 1
        if progress is not None:
            progress(found)
        yield Study(
            patient.mrn,
            volume,
            int(nodule is not None),
            centre,
            nodule.diameter_mm if nodule else None,
        )


def fingerprint(studies: list[Study]) -> str:
    """sha256 over every study's UIDs, voxels and truth: the card's training-data fingerprint."""
    digest = hashlib.sha256()
    for s in studies:
        digest.update(s.volume.series_uid.encode())
        digest.update(s.volume.hu.tobytes())
        digest.update(f"{s.label}|{s.centre_mm}|{s.diameter_mm}".encode())
    return digest.hexdigest()


def split(
    studies: list[Study], fractions: tuple[float, float] = (0.7, 0.15)
) -> tuple[list[Study], list[Study], list[Study]]:
    """Train / calibration / test by a hash of the MRN (one study per patient, so no patient
    is in two parts), stable whatever the order or size of the cohort."""
    parts: tuple[list[Study], list[Study], list[Study]] = ([], [], [])
    for s in studies:
        u = int(hashlib.sha256(s.mrn.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        parts[0 if u < fractions[0] else 1 if u < sum(fractions) else 2].append(s)
    return parts
