"""DICOM -> volume: geometry from the headers, and a clear refusal of what is not one CT volume."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, MRImageStorage, generate_uid

from models.imaging.data import DEFAULT_INDEX_DATE, rendered_volume
from models.imaging.volume import VolumeError, build_volume, native_pixels
from simulators.cohort.ct import ct_series
from simulators.cohort.model import CohortGenerator, SyntheticPatient

SEED = 3


@pytest.fixture(scope="module")
def patient() -> SyntheticPatient:
    gen = CohortGenerator(SEED, DEFAULT_INDEX_DATE)
    return next(p for p in (gen.patient(i) for i in range(1, 200)) if p.ct and p.ct.nodule)


@pytest.fixture
def series(patient: SyntheticPatient) -> list[Dataset]:
    return ct_series(patient, SEED)


def test_slices_are_ordered_by_position_not_by_arrival(
    series: list[Dataset], patient: SyntheticPatient
) -> None:
    shuffled = series[:]
    random.Random(1).shuffle(shuffled)
    for k, ds in enumerate(shuffled):
        ds.InstanceNumber = k + 1  # instance numbers that lie about the order
    volume = build_volume(shuffled)
    assert volume.hu.shape == (96, 96, 32)
    assert volume.spacing == pytest.approx((3.5, 3.5, 7.5))
    assert volume.sop_uids == tuple(ds.SOPInstanceUID for ds in series)
    assert np.array_equal(volume.hu, rendered_volume(patient, SEED).hu)
    assert volume.to_patient((0, 0, 31)) == pytest.approx((-168.0, -168.0, 232.5))


def test_a_rescale_slope_and_intercept_give_hounsfield_units(series: list[Dataset]) -> None:
    plain = build_volume(series)
    for ds in series:
        raw = np.frombuffer(ds.PixelData, dtype=np.int16) + 1024
        ds.PixelData = raw.astype(np.int16).tobytes()
        ds.RescaleIntercept = -1024
    assert np.array_equal(build_volume(series).hu, plain.hu)


def test_a_missing_slice_is_refused_with_where_it_is(series: list[Dataset]) -> None:
    gone = series[12]
    del series[12]
    with pytest.raises(VolumeError, match=r"missing slices: 15\.00 mm") as err:
        build_volume(series)
    assert series[11].SOPInstanceUID in str(err.value) and gone.SOPInstanceUID not in str(err.value)


def test_a_duplicated_slice_is_refused(series: list[Dataset]) -> None:
    twin = copy.deepcopy(series[4])
    twin.SOPInstanceUID = generate_uid()
    series.append(twin)
    with pytest.raises(VolumeError, match="overlapping or duplicated slices"):
        build_volume(series)


def test_an_mr_series_is_refused(series: list[Dataset]) -> None:
    for ds in series:
        ds.Modality, ds.SOPClassUID = "MR", MRImageStorage
    with pytest.raises(VolumeError, match="the series is MR, not CT"):
        build_volume(series)


def test_truncated_pixel_data_is_refused_naming_the_instance(series: list[Dataset]) -> None:
    series[7].PixelData = series[7].PixelData[:1000]
    with pytest.raises(VolumeError, match=f"instance {series[7].SOPInstanceUID}: "):
        build_volume(series)


def test_missing_geometry_is_refused(series: list[Dataset]) -> None:
    del series[2].ImagePositionPatient
    with pytest.raises(VolumeError, match="lacks usable ImageOrientationPatient"):
        build_volume(series)


def test_native_slices_read_as_pydicom_decodes_them(series: list[Dataset]) -> None:
    shape = (int(series[0].Rows), int(series[0].Columns))
    for ds in series:
        native = native_pixels(ds, shape)
        assert native is not None and np.array_equal(native, ds.pixel_array)


def test_slices_that_are_not_plain_bytes_go_to_pydicom(series: list[Dataset]) -> None:
    shape = (int(series[0].Rows), int(series[0].Columns))
    masked = copy.deepcopy(series[3])
    masked.BitsStored, masked.HighBit = 12, 11  # high bits must be masked: pydicom's job
    assert native_pixels(masked, shape) is None
    big = copy.deepcopy(series[3])
    big.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    assert native_pixels(big, shape) is None
    short = copy.deepcopy(series[3])
    short.PixelData = short.PixelData[:-2]
    assert native_pixels(short, shape) is None
    with pytest.raises(VolumeError, match=f"instance {short.SOPInstanceUID}: unreadable"):
        build_volume([*series[:3], short, *series[4:]])
