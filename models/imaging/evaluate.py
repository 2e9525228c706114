"""Held-out evaluation of the imaging model: discrimination, operating point and localisation.

- AUROC of the calibrated probability against "nodule present" (the cohort's truth);
- sensitivity at a fixed specificity (default 0.90: the threshold is the negatives' 90th
  percentile of the score), the usual way detection aids are compared at an acceptable
  false-positive rate;
- localisation error: distance in mm between the predicted centre (heatmap peak) and the true
  nodule centre, over the studies that have a nodule;
- 95 % confidence intervals by a seeded percentile bootstrap over studies (1000 resamples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

BOOTSTRAP = 1000


@dataclass(frozen=True, slots=True)
class Scored:
    label: int
    probability: float
    error_mm: float | None  # predicted peak to true centre, studies with a nodule only


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def sensitivity_at_specificity(labels: np.ndarray, scores: np.ndarray, spec: float) -> float:
    neg, pos = scores[labels == 0], scores[labels == 1]
    if not len(neg) or not len(pos):
        return float("nan")
    threshold = float(np.quantile(neg, spec, method="higher"))
    return float((pos > threshold).mean())


def _ci(
    rng: np.random.Generator, n: int, stat: Callable[[np.ndarray], float]
) -> tuple[float, float]:
    values = []
    for _ in range(BOOTSTRAP):
        v = stat(rng.integers(0, n, size=n))
        if not np.isnan(v):
            values.append(v)
    if not values:
        return (float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return (round(float(low), 4), round(float(high), 4))


def evaluate(
    scored: Sequence[Scored], *, specificity: float = 0.9, threshold: float = 0.5, seed: int = 0
) -> dict[str, object]:
    """The card's metrics block; every figure with its 95 % CI."""
    labels = np.array([s.label for s in scored])
    probs = np.array([s.probability for s in scored])
    errors = np.array([s.error_mm for s in scored if s.error_mm is not None])
    rng = np.random.default_rng(seed)
    n = len(scored)
    predicted = probs >= threshold
    pos, neg = labels == 1, labels == 0
    return {
        "n_studies": n,
        "n_with_nodule": int(pos.sum()),
        "auroc": round(auroc(labels, probs), 4),
        "auroc_ci95": _ci(rng, n, lambda i: auroc(labels[i], probs[i])),
        f"sensitivity_at_specificity_{specificity:.2f}": round(
            sensitivity_at_specificity(labels, probs, specificity), 4
        ),
        f"sensitivity_at_specificity_{specificity:.2f}_ci95": _ci(
            rng, n, lambda i: sensitivity_at_specificity(labels[i], probs[i], specificity)
        ),
        "threshold": threshold,
        "sensitivity_at_threshold": round(float(predicted[pos].mean()), 4) if pos.any() else None,
        "specificity_at_threshold": round(float((~predicted[neg]).mean()), 4)
        if neg.any()
        else None,
        "localisation_error_mm_median": round(float(np.median(errors)), 2) if len(errors) else None,
        "localisation_error_mm_median_ci95": _ci(
            rng, len(errors), lambda i: float(np.median(errors[i]))
        )
        if len(errors)
        else None,
        "localised_within_10mm": round(float((errors <= 10).mean()), 4) if len(errors) else None,
    }
