"""The imaging AI's noise model (models/tabular/synthetic_ai.py): its operating characteristics
are the ones documented (near-perfect from 10 mm, weaker for small nodules), its probability is
calibrated, it is seeded by the patient only, and it is not the truth."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from models.tabular import synthetic_ai
from simulators.cohort.model import Nodule


def _scores(diameter: float | None, n: int, tag: str) -> list[float]:
    nodule = None if diameter is None else Nodule(diameter, False, True)
    return [synthetic_ai.probability(nodule, f"{tag}-{i}") for i in range(n)]


def _auroc(diameter: float, n: int = 400) -> float:
    neg, pos = _scores(None, n, "neg"), _scores(diameter, n, f"pos{diameter}")
    return float(roc_auc_score([0] * n + [1] * n, neg + pos))


def test_discrimination_rises_with_nodule_size_as_documented() -> None:
    assert _auroc(12.0) > 0.99
    assert 0.80 < _auroc(5.0) < 0.92
    assert 0.55 < _auroc(3.0) < 0.75


def test_probability_is_calibrated_against_the_nodule_prior() -> None:
    # Nodules drawn as the generator draws them, at the model's own prior.
    rng = np.random.default_rng(0)
    labels, probs = [], []
    for i in range(4000):
        has = rng.random() < synthetic_ai.P_NODULE
        cancer = rng.random() < 0.9 * 0.0897 / synthetic_ai.P_NODULE
        size = float(np.exp(rng.normal(np.log(16.0 if cancer else 5.0), 0.35)))
        labels.append(int(has))
        probs.append(synthetic_ai.probability(Nodule(size, False, True) if has else None, f"c{i}"))
    assert abs(float(np.mean(probs)) - float(np.mean(labels))) < 0.02
    top = np.asarray(probs) >= 0.8
    assert np.asarray(labels)[top].mean() > 0.75


def test_seeded_by_patient_and_not_the_truth() -> None:
    nodule = Nodule(8.0, True, True)
    assert synthetic_ai.probability(nodule, "p1") == synthetic_ai.probability(nodule, "p1")
    values = set(_scores(8.0, 20, "same-size"))
    assert len(values) == 20  # noise per patient: equal nodules, different readings
    assert min(_scores(None, 200, "clean")) < 0.05 < max(_scores(None, 200, "clean"))
