"""The cohort's generative model: deterministic, coherent, and its true risk is calibrated."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
from pydicom import dcmread

from simulators.cohort.ct import ct_series, nodule_voxel, uids
from simulators.cohort.model import generate

INDEX = date(2026, 6, 1)


def _auroc(score: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(score)
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    n1 = int(y.sum())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def test_same_seed_same_cohort_other_seed_other_cohort() -> None:
    a, b, c = generate(50, 11, INDEX), generate(50, 11, INDEX), generate(50, 12, INDEX)
    assert [(p.mrn, p.true_risk, len(p.labs)) for p in a] == [
        (p.mrn, p.true_risk, len(p.labs)) for p in b
    ]
    assert [p.true_risk for p in a] != [p.true_risk for p in c]


def test_true_risk_is_calibrated_and_informative() -> None:
    cohort = generate(2000, 5, INDEX)
    y = np.array([p.cancer for p in cohort])
    risk = np.array([p.true_risk for p in cohort])
    prior = np.array([p.prior_risk for p in cohort])
    assert 0.05 < y.mean() < 0.13
    assert abs(risk.mean() - y.mean()) < 0.015  # calibration in the large
    high = risk > 0.5
    assert abs(y[high].mean() - risk[high].mean()) < 0.1
    assert _auroc(risk, y) > _auroc(prior, y) + 0.05  # labs and imaging carry signal
    assert _auroc(risk, y) < 0.99  # but the task is not trivial


def test_records_are_clinically_coherent() -> None:
    for p in generate(200, 9, INDEX):
        assert 40 <= p.age_at(INDEX) <= 85
        assert (p.pack_years == 0) == (p.smoking == "never")
        assert all(lab.taken.date() < INDEX for lab in p.labs)
        assert (p.diagnosis_date is not None) == p.cancer
        if p.diagnosis_date:
            assert 0 < (p.diagnosis_date - INDEX).days <= 365
        assert all(lab.value > 0 for lab in p.labs)


def test_ct_series_is_valid_dicom_with_the_nodule_where_the_truth_says() -> None:
    patient = next(
        p for p in generate(100, 3, INDEX) if p.ct and p.ct.nodule and p.ct.nodule.diameter_mm >= 8
    )
    series = ct_series(patient, 3)
    assert len(series) == 32
    assert {ds.StudyInstanceUID for ds in series} == {uids(3, patient.mrn)[0]}
    assert len({ds.SOPInstanceUID for ds in series}) == 32
    voxel = nodule_voxel(patient.ct) if patient.ct else None
    assert voxel is not None
    buf = io.BytesIO()
    series[voxel[0]].save_as(buf, enforce_file_format=True)
    image = dcmread(io.BytesIO(buf.getvalue())).pixel_array
    assert image[voxel[1], voxel[2]] > -200  # solid nodule inside air-filled lung
    assert image[voxel[1], min(voxel[2] + 6, 95)] < -500  # lung a few voxels away
