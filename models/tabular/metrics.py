"""Discrimination and calibration metrics with percentile bootstrap confidence intervals.

AUROC and AUPRC (average precision; scikit-learn's definitions, checked against it in tests);
expected calibration error with ten equal-width bins (Naeini et al., AAAI 2015; Guo et al.,
ICML 2017) — the bin-weighted mean of |observed rate − mean predicted risk|. CIs resample test
patients with replacement (Efron & Tibshirani 1993, percentile method); a paired bootstrap
gives the CI of the model/ceiling ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata  # type: ignore[import-untyped]

Array = NDArray[np.float64]
Metric = Callable[[NDArray[np.int_], Array], float]


def auroc(y: NDArray[np.int_], p: Array) -> float:
    """Mann-Whitney form (ties count one half); equals sklearn's roc_auc_score, ~50x faster,
    which matters inside a 1000-resample bootstrap."""
    ranks = rankdata(p)
    pos = int(y.sum())
    neg = len(y) - pos
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auprc(y: NDArray[np.int_], p: Array) -> float:
    """Average precision, step-wise over distinct thresholds (sklearn's definition)."""
    order = np.argsort(-p, kind="mergesort")
    scores, hits = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(y) - 1]
    tps = np.cumsum(hits)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def ece(y: NDArray[np.int_], p: Array, bins: int = 10) -> float:
    """Expected calibration error, equal-width bins over [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(float(y[mask].mean()) - float(p[mask].mean()))
    return float(total)


def reliability(y: NDArray[np.int_], p: Array, bins: int = 10) -> list[dict[str, float]]:
    """Per non-empty bin: range, count, mean predicted risk and observed rate (for the card)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append(
                {
                    "from": round(float(edges[b]), 2),
                    "to": round(float(edges[b + 1]), 2),
                    "n": int(mask.sum()),
                    "predicted": round(float(p[mask].mean()), 4),
                    "observed": round(float(y[mask].mean()), 4),
                }
            )
    return out


def _resamples(y: NDArray[np.int_], n: int, seed: int) -> list[NDArray[np.int_]]:
    """Bootstrap index sets that hold both classes (AUROC needs them)."""
    rng = np.random.default_rng(seed)
    out: list[NDArray[np.int_]] = []
    while len(out) < n:
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            out.append(idx)
    return out


def with_ci(
    metric: Metric, y: NDArray[np.int_], p: Array, *, n: int = 1000, seed: int = 0
) -> dict[str, float]:
    """{"value", "ci_low", "ci_high"}: the point estimate and its 95 % percentile interval."""
    values = [metric(y[idx], p[idx]) for idx in _resamples(y, n, seed)]
    low, high = np.percentile(values, [2.5, 97.5])
    return {
        "value": round(metric(y, p), 4),
        "ci_low": round(float(low), 4),
        "ci_high": round(float(high), 4),
    }


def ratio_with_ci(
    y: NDArray[np.int_], model: Array, ceiling: Array, *, n: int = 1000, seed: int = 0
) -> dict[str, float]:
    """AUROC(model) / AUROC(ceiling) with a paired bootstrap CI (same resampled patients)."""
    values = [auroc(y[i], model[i]) / auroc(y[i], ceiling[i]) for i in _resamples(y, n, seed)]
    low, high = np.percentile(values, [2.5, 97.5])
    return {
        "value": round(auroc(y, model) / auroc(y, ceiling), 4),
        "ci_low": round(float(low), 4),
        "ci_high": round(float(high), 4),
    }


def summary(y: NDArray[np.int_], p: Array, *, n: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The metrics block of a model card for one score on one test set."""
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "auroc": with_ci(auroc, y, p, n=n, seed=seed),
        "auprc": with_ci(auprc, y, p, n=n, seed=seed),
        "ece": with_ci(ece, y, p, n=n, seed=seed),
    }
