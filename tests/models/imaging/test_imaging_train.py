"""Training the imaging model on a tiny cohort: well above chance on unseen patients, and
deterministic (equal seeds, equal weights; another seed, other weights)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cdss.cli import app as cli
from models.imaging import data
from models.imaging.config import TINY
from models.imaging.evaluate import auroc
from models.imaging.infer import MODEL_NAME, Predictor
from models.imaging.train import fit, save, train
from models.registry import ModelRegistry


@pytest.fixture(scope="module")
def studies() -> list[data.Study]:
    return list(data.cohort_studies(40, 3, via_dicom=False, balanced=True))


def test_the_fast_rendering_path_gives_the_dicom_volumes() -> None:
    for fast, slow in zip(
        data.cohort_studies(2, 3, via_dicom=False), data.cohort_studies(2, 3), strict=True
    ):
        assert np.array_equal(fast.volume.hu, slow.volume.hu)
        assert np.allclose(fast.volume.affine, slow.volume.affine)
        assert fast.volume.sop_uids == slow.volume.sop_uids
        assert fast.centre_mm == slow.centre_mm


def test_a_tiny_model_finds_nodules_in_patients_it_never_saw(studies: list[data.Study]) -> None:
    """At the tiny configuration's 5.25 mm voxels a nodule under ~8 mm is about one voxel, so
    the check is on what that grid can show: studies without a nodule against studies with one
    of >= 10 mm (the default 3.5 mm model's card reports every nodule size)."""
    trained = train(studies, TINY)
    assert trained.counts["test"] > 0 and "auroc_ci95" in trained.metrics
    predictor = Predictor(trained.network, TINY, trained.calibration, model="t@1")
    # another cohort seed: other patients, other volumes
    unseen = list(data.cohort_studies(16, 99, via_dicom=False, balanced=True))
    visible = [s for s in unseen if s.label == 0 or (s.diameter_mm or 0) >= 10]
    peaks = [predictor.peak(s.volume) for s in visible]
    labels = np.array([s.label for s in visible])
    scores = np.array([score for score, _ in peaks])
    assert labels.sum() >= 3 and (1 - labels).sum() >= 6
    assert auroc(labels, scores) >= 0.8, list(zip(labels, scores.round(2), strict=True))
    errors = [
        float(np.linalg.norm(np.array(centre) - np.array(s.centre_mm)))
        for s, (_, centre) in zip(visible, peaks, strict=True)
        if s.centre_mm is not None
    ]
    assert float(np.median(errors)) <= 15.0, errors  # found where they are


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
    studies: list[data.Study], tmp_path: Path
) -> None:
    config = dataclasses.replace(TINY, epochs=1, samples_per_volume=4)
    independent = list(data.cohort_studies(6, 98, via_dicom=False, balanced=True))
    trained = train(studies[:20], config, external=independent)
    registry = ModelRegistry(tmp_path)
    version = save(registry, trained, {"studies": 20, "cohort_seed": 3}, {"cohort_seed": 98})
    assert version.card["training_data"]["fingerprint_sha256"] == trained.fingerprint
    assert version.card["metrics"]["test"]["n_studies"] == trained.counts["test"]
    external = version.card["metrics"]["external"]
    assert external["cohort_seed"] == 98 and external["n_studies"] == 6
    assert external["n_with_nodule"] == sum(s.label for s in independent)
    registry.promote(MODEL_NAME, version.version)
    loaded = Predictor.promoted(registry)
    fresh = Predictor(trained.network, config, trained.calibration, model="x@1")
    volume = studies[0].volume
    assert loaded.predict(volume).probability == pytest.approx(fresh.predict(volume).probability)


def test_cli_trains_evaluates_on_an_independent_cohort_and_refuses_the_same_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDSS_MODELS_DIR", str(tmp_path))
    runner = CliRunner()
    args = ["train", "imaging", "--tiny", "--studies", "30", "--epochs", "1", "--promote"]
    same = runner.invoke(cli, [*args, "--eval-studies", "4", "--eval-cohort-seed", "1"])
    assert same.exit_code == 2 and "must differ" in same.output
    few = runner.invoke(cli, [*args[:3], "--studies", "10", "--eval-studies", "0"])
    assert few.exit_code == 2 and "cannot train: too few studies" in few.output
    done = runner.invoke(cli, [*args, "--eval-studies", "4", "--eval-cohort-seed", "5"])
    assert done.exit_code == 0, done.output
    version = ModelRegistry(tmp_path).promoted(MODEL_NAME)
    assert version is not None
    external = version.card["metrics"]["external"]
    assert external["cohort_seed"] == 5 and external["n_studies"] == 4
