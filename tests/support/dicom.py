"""Tiny synthetic DICOM CT series for the tests, made with pydicom (no downloads, no PHI).

Each slice is a complete CT Image Storage object (file meta, patient/study/series/frame of
reference/image plane/pixel modules) so that Orthanc indexes it, DICOMweb serves its metadata and
frames, and an imaging pipeline could stack it into a volume by ImagePositionPatient.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = str(CTImageStorage)


@dataclass(slots=True)
class CtSeriesSpec:
    """What varies between test series; everything else is a fixed, valid CT default."""

    patient_id: str = "MRN-0001"
    patient_name: str = "TEST^PATIENT"
    accession_number: str = "ACC-0001"
    study_date: str = "20240115"
    study_time: str = "101500"
    study_description: str = "CT CHEST WITHOUT CONTRAST"
    series_description: str = "AXIAL 2.5MM"
    referring_physician: str = "REF^DOCTOR"
    body_part: str | None = "CHEST"
    laterality: str | None = None
    series_number: int = 1
    slices: int = 4
    size: int = 32
    slice_thickness: float = 2.5
    pixel_spacing: float = 0.7
    study_uid: str = field(default_factory=generate_uid)
    series_uid: str = field(default_factory=generate_uid)
    frame_of_reference_uid: str = field(default_factory=generate_uid)


def _pixels(spec: CtSeriesSpec, index: int) -> np.ndarray:
    """A disc of soft tissue in air whose radius changes with the slice: deterministic content."""
    n = spec.size
    yy, xx = np.mgrid[0:n, 0:n]
    radius = n / 3 + index
    inside = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 <= radius**2
    stored = np.where(inside, 1024 + 40, 0)  # HU 40 inside, -1024 outside (intercept -1024)
    return stored.astype(np.int16)


def _slice(spec: CtSeriesSpec, index: int) -> Dataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = spec.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = spec.study_time
    ds.AccessionNumber = spec.accession_number
    ds.Modality = "CT"
    ds.Manufacturer = "CDSS synthetic"
    ds.ReferringPhysicianName = spec.referring_physician
    ds.StudyDescription = spec.study_description
    ds.SeriesDescription = spec.series_description
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    if spec.body_part is not None:
        ds.BodyPartExamined = spec.body_part
    ds.SliceThickness = spec.slice_thickness
    ds.KVP = 120
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = spec.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = spec.series_number
    ds.InstanceNumber = index + 1
    if spec.laterality is not None:
        ds.Laterality = spec.laterality
    ds.ImagePositionPatient = [0.0, 0.0, index * spec.slice_thickness]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.FrameOfReferenceUID = spec.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = index * spec.slice_thickness
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = spec.size
    ds.PixelSpacing = [spec.pixel_spacing, spec.pixel_spacing]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.PixelData = _pixels(spec, index).tobytes()
    return ds


def ct_series(spec: CtSeriesSpec | None = None) -> list[Dataset]:
    """One CT series, `spec.slices` slices stacked along z; new UIDs unless the spec fixes them."""
    spec = spec or CtSeriesSpec()
    return [_slice(spec, i) for i in range(spec.slices)]


def to_bytes(ds: Dataset) -> bytes:
    """The Part 10 file bytes of a dataset (what `POST /instances` and STOW-RS carry)."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
