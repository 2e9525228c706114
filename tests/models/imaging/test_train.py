"""Training the imaging model on a tiny cohort: well above chance on unseen patients, and
deterministic (equal seeds, equal weights; another seed, other weights)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.imaging import data
from models.imaging.config import TINY
from models.imaging.evaluate import auroc
from models.imaging.infer import MODEL_NAME, Predictor
from models.imaging.train import fit, save, train
from models.registry import ModelRegistry


@pytest.fixture(scope="module")
def studies() -> list[data.Study]:
    return list(data.cohort_studies(30, 3, via_dicom=False, balanced=True))


def test_the_fast_rendering_path_gives_the_dicom_volumes() -> None:
    for fast, slow in zip(
        data.cohort_studies(2, 3, via_dicom=False), data.cohort_studies(2, 3), strict=True
    ):
        assert np.array_equal(fast.volume.hu, slow.volume.hu)
        assert np.allclose(fast.volume.affine, slow.volume.affine)
        assert fast.volume.sop_uids == slow.volume.sop_uids
        assert fast.centre_mm == slow.centre_mm


def test_a_tiny_model_finds_nodules_in_patients_it_never_saw(
    studies: list[data.Study], tmp_path: object
) -> None:
    trained = train(studies, TINY)
    assert trained.counts["test"] > 0 and "auroc_ci95" in trained.metrics
    predictor = Predictor(trained.network, TINY, trained.calibration, model="t@1")
    # another cohort seed: other patients, other volumes
    unseen = list(data.cohort_studies(16, 99, via_dicom=False, balanced=True))
    labels = np.array([s.label for s in unseen])
    scores = np.array([predictor.peak(s.volume)[0] for s in unseen])
    assert labels.sum() >= 4 and (1 - labels).sum() >= 4
    assert auroc(labels, scores) >= 0.75, list(zip(labels, scores.round(2), strict=True))
    # nodules the 7 mm grid can resolve (>= 10 mm) are found where they are
    errors = [
        np.linalg.norm(np.array(predictor.peak(s.volume)[1]) - np.array(s.centre_mm))
        for s in unseen
        if s.centre_mm is not None and (s.diameter_mm or 0) >= 10
    ]
    assert errors and float(np.median(errors)) <= 15.0, errors


def test_equal_seeds_give_equal_weights_and_other_seeds_other_weights(
    studies: list[data.Study],
) -> None:
    config = dataclasses.replace(TINY, epochs=1, samples_per_volume=4)
    few = studies[:8]
    first, second = fit(few, config), fit(few, config)
    other = fit(few, dataclasses.replace(config, seed=config.seed + 1))
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_saved_model_reloads_from_the_registry_with_the_same_outputs(
    studies: list[data.Study], tmp_path: object
) -> None:
    from pathlib import Path

    config = dataclasses.replace(TINY, epochs=1, samples_per_volume=4)
    trained = train(studies[:20], config)
    registry = ModelRegistry(Path(str(tmp_path)))
    version = save(registry, trained, {"studies": 20, "cohort_seed": 3})
    assert version.card["training_data"]["fingerprint_sha256"] == trained.fingerprint
    assert version.card["metrics"]["test"]["n_studies"] == trained.counts["test"]
    registry.promote(MODEL_NAME, version.version)
    loaded = Predictor.promoted(registry)
    fresh = Predictor(trained.network, config, trained.calibration, model="x@1")
    volume = studies[0].volume
    assert loaded.predict(volume).probability == pytest.approx(fresh.predict(volume).probability)
