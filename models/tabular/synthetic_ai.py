"""The imaging AI's finding for a synthetic CT: a realistic probability, not the truth.

The tabular model reads the imaging pipeline's finding Observation (docs/ai-findings.md), not
the generator's nodule. For cohorts built without running the CNN on every study
(`cohort.synthetic`), the probability is drawn from a noise model of that CNN:

Binormal score model (the standard ROC model for reader/CAD studies; Metz, Stat Med 1998):
a latent score s ~ N(0, 1) without a nodule and s ~ N(mu(d), 1) with a nodule of diameter d,
so AUROC(d) = Phi(mu(d) / sqrt 2). Detectability grows with size as a logistic curve,
mu(d) = MU_MAX / (1 + exp(-(d - D50) / WIDTH)), with
- MU_MAX = 4.5, WIDTH = 1.5 mm: AUROC(10 mm) = 0.9986, i.e. the held-out AUROC 1.0 the
  lung-nodule-ct model card reports (nodules of cancers have median 16 mm);
- D50 = 6 mm: the card's stated limit ("nodules under ~6 mm are near the resolution it works
  at": 3.5 mm in-plane voxels, 7.5 mm slices), giving AUROC 0.86 at 5 mm (the median of
  benign nodules) and 0.65 at 3 mm.
The held-out set behind that card is small (16 studies, 3 nodules), so the small-nodule part of
the curve is an assumption from the stated resolution, not a measurement.

The reported probability is the calibrated P(nodule | s) a perfectly calibrated model would
give (the real model is Platt-calibrated): prior odds of a nodule on a CT times the likelihood
ratio of s, integrating mu(d) over the generator's size distribution (log-normal, medians
16 / 5 mm, log-sd 0.35, mixed by P(cancer | nodule)) on a fixed quadrature grid. The finding
is Present when the probability reaches the model's threshold 0.5. The noise is seeded by the
patient's id only: it never touches the generator's random stream (equal seeds, equal cohort).
"""

from __future__ import annotations

import hashlib
import math
from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm  # type: ignore[import-untyped]

from simulators.cohort.model import Nodule

MU_MAX, D50_MM, WIDTH_MM = 4.5, 6.0, 1.5
THRESHOLD = 0.5
# P(cancer | CT) of the generator (CT is MCAR): 0.0897 measured over 8000 patients, seed 1.
_CANCER_P = 0.0897
_NODULE_P = (0.12, 0.9)  # P(nodule | Y=0), P(nodule | Y=1): simulators.cohort.model
_LOG_MEDIAN, _LOG_SD = (math.log(5.0), math.log(16.0)), 0.35
P_NODULE = _NODULE_P[0] * (1 - _CANCER_P) + _NODULE_P[1] * _CANCER_P


def detectability(diameter_mm: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
    """mu(d): mean latent score of a nodule of this diameter, in noise SDs."""
    return MU_MAX / (1 + np.exp(-(np.asarray(diameter_mm) - D50_MM) / WIDTH_MM))


@cache
def _size_grid() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mu at quadrature sizes, their weights) of the nodule-size mixture."""
    w_cancer = _NODULE_P[1] * _CANCER_P / P_NODULE
    q = (np.arange(200) + 0.5) / 200
    mus, weights = [], []
    for y, weight in ((0, 1 - w_cancer), (1, w_cancer)):
        sizes = np.exp(_LOG_MEDIAN[y] + _LOG_SD * norm.ppf(q))
        mus.append(np.asarray(detectability(sizes)))
        weights.append(np.full(len(q), weight / len(q)))
    return np.concatenate(mus), np.concatenate(weights)


def calibrated(score: float) -> float:
    """P(nodule | latent score) under the binormal model and the cohort's nodule prior."""
    mus, weights = _size_grid()
    lr = float(np.sum(weights * np.exp(score * mus - mus * mus / 2)))  # phi(s-mu)/phi(s)
    odds = P_NODULE / (1 - P_NODULE) * lr
    return odds / (1 + odds)


def probability(nodule: Nodule | None, pid: str) -> float:
    """The AI's calibrated nodule probability for one patient's CT (seeded by `pid`)."""
    seed = int(hashlib.sha256(f"ai-noise|{pid}".encode()).hexdigest()[:16], 16)
    noise = float(np.random.default_rng(seed).standard_normal())
    mu = 0.0 if nodule is None else float(detectability(nodule.diameter_mm))
    return calibrated(mu + noise)
