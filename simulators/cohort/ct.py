"""Small synthetic chest CT series for the cohort, as real DICOM (CT Image Storage).

The volume is a stylised chest: a soft-tissue ellipse, two air-filled lungs with texture, a
spine, and, where the patient has one, a solid nodule of the drawn diameter at the drawn place.
It is small (96 x 96 x 32 voxels of 3.5 x 3.5 x 7.5 mm) so CPU training stays quick, but every
attribute a viewer, the ImagingStudy mapper and the imaging model read is present and correct.
UIDs derive from the seed and the MRN, so the same cohort yields the same UIDs.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from simulators.cohort.model import CtStudy, SyntheticPatient

ROWS = COLS = 96
SLICES = 32
PIXEL_MM = 3.5
SLICE_MM = 7.5
STUDY_DESCRIPTION = "CT CHEST WO CONTRAST"


def accession_number(mrn: str) -> str:
    return "A" + mrn.replace("-", "")[-10:]


def uids(seed: int, mrn: str) -> tuple[str, str]:
    study = generate_uid(entropy_srcs=["cdss-cohort", str(seed), mrn, "study"])
    series = generate_uid(entropy_srcs=["cdss-cohort", str(seed), mrn, "series"])
    return study, series


def volume(study: CtStudy, rng: np.random.Generator) -> np.ndarray:
    """Hounsfield units, shape (slices, rows, cols); z index 0 is the lowest slice."""
    z, y, x = np.meshgrid(
        np.linspace(0, 1, SLICES), np.linspace(0, 1, ROWS), np.linspace(0, 1, COLS), indexing="ij"
    )
    hu = np.full((SLICES, ROWS, COLS), -1000.0)
    body = ((x - 0.5) / 0.44) ** 2 + ((y - 0.5) / 0.34) ** 2 <= 1
    hu[body] = 40.0
    for cx in (0.3, 0.7):
        lung = (((x - cx) / 0.15) ** 2 + ((y - 0.47) / 0.22) ** 2 <= 1) & (z > 0.08) & (z < 0.95)
        hu[lung] = -850.0 + rng.normal(0, 35, size=int(lung.sum()))
    spine = ((x - 0.5) / 0.06) ** 2 + ((y - 0.76) / 0.06) ** 2 <= 1
    hu[spine] = 700.0
    if study.nodule is not None:
        n = study.nodule
        cx, cy, cz = n.center
        dist = np.sqrt(
            ((x - cx) * COLS * PIXEL_MM) ** 2
            + ((y - cy) * ROWS * PIXEL_MM) ** 2
            + ((z - cz) * SLICES * SLICE_MM) ** 2
        )
        hu[dist <= n.diameter_mm / 2] = 45.0
    hu += rng.normal(0, 12, size=hu.shape)
    clipped: np.ndarray = np.clip(hu, -1024, 3071)
    return clipped


def nodule_voxel(study: CtStudy) -> tuple[int, int, int] | None:
    """The nodule centre as (slice, row, col) indices, for ground truth and for tests."""
    if study.nodule is None:
        return None
    cx, cy, cz = study.nodule.center
    return round(cz * (SLICES - 1)), round(cy * (ROWS - 1)), round(cx * (COLS - 1))


def _common(p: SyntheticPatient, study: CtStudy, seed: int) -> Dataset:
    ds = Dataset()
    study_uid, series_uid = uids(seed, p.mrn)
    when: datetime = study.performed
    ds.PatientID, ds.PatientName = p.mrn, f"{p.family}^{p.given}"
    ds.PatientSex, ds.PatientBirthDate = (
        ("M" if p.sex == "male" else "F"),
        p.birth_date.strftime("%Y%m%d"),
    )
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.AccessionNumber, ds.StudyID = accession_number(p.mrn), "1"
    ds.StudyDescription, ds.SeriesDescription = STUDY_DESCRIPTION, "Axial 7.5 mm"
    ds.Modality, ds.BodyPartExamined, ds.SeriesNumber = "CT", "CHEST", 1
    ds.ReferringPhysicianName, ds.Manufacturer = "", "cdss synthetic cohort"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [PIXEL_MM, PIXEL_MM], SLICE_MM
    ds.Rows, ds.Columns, ds.SamplesPerPixel = ROWS, COLS, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = -600, 1500
    ds.SOPClassUID = CTImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    return ds


def ct_series(p: SyntheticPatient, seed: int) -> list[Dataset]:
    """One DICOM instance per slice of the patient's CT study (empty when there is none)."""
    if p.ct is None:
        return []
    rng = np.random.default_rng([seed, int.from_bytes(p.mrn.encode()[-6:], "big")])
    hu = volume(p.ct, rng).astype(np.int16)
    out = []
    for k in range(SLICES):
        ds = _common(p, p.ct, seed)
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["cdss-cohort", str(seed), p.mrn, str(k)])
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-COLS * PIXEL_MM / 2, -ROWS * PIXEL_MM / 2, k * SLICE_MM]
        ds.SliceLocation = k * SLICE_MM
        ds.PixelData = hu[k].tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = (
            CTImageStorage,
            ds.SOPInstanceUID,
        )
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        out.append(ds)
    return out
