"""Bayes-optimal scores from the synthetic cohort's ground truth: what no model can beat.

`true_risk` in ground_truth.csv is the exact posterior given everything the generator drew
(simulators/cohort/model.py): demographics, smoking and pack-years, conditions, every lab value
and the CT nodule's presence, size and lobe. The tabular model sees less: the sources record no
pack-years (OpenEMR keeps them in a free-text note) and the CT findings live in pixels (the
imaging model's job). So two ceilings are reported on the same test set:

- `full`: AUROC of `true_risk` (the issue's ceiling);
- `observable`: AUROC of the exact posterior given only what the tabular record holds, obtained
  from the truth by removing the imaging likelihood ratio and integrating pack-years over their
  generating distribution (Gamma(4, mean/4), mean 20 former / 30 current, 0 never):
  odds = E_py[π] / E_py[1 - π] × LR_labs, with LR_labs = odds(true) / (odds(prior) × LR_img).

Since feature set v3 the tabular model also reads the imaging AI's nodule probability (a noisy
view of the nodule: models/tabular/synthetic_ai.py), so it may beat `observable`, which stays
defined as "no imaging information"; `full` remains the ceiling it is measured against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy.stats import gamma  # type: ignore[import-untyped]

from simulators.cohort.model import CtStudy, Nodule, imaging_log_lr

_MEAN_PACK_YEARS = {"never": 0.0, "former": 20.0, "current": 30.0}
_PACK_YEAR_COEF, _PACK_YEAR_CAP = 0.02, 80.0
_EPS = 1e-7


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


@cache
def _pack_year_grid(smoking: str) -> tuple[float, ...]:
    """Equal-probability quantiles of the pack-years distribution (deterministic quadrature)."""
    mean = _MEAN_PACK_YEARS[smoking]
    if mean == 0:
        return (0.0,)
    q = (np.arange(400) + 0.5) / 400
    return tuple(float(x) for x in gamma.ppf(q, a=4.0, scale=mean / 4.0))


def _imaging_log_lr(row: Mapping[str, str]) -> float:
    if not row.get("study_uid"):
        return 0.0
    if row.get("nodule") != "1":
        return imaging_log_lr(CtStudy(performed=None, nodule=None))  # type: ignore[arg-type]
    nodule = Nodule(float(row["nodule_diameter_mm"]), row["nodule_upper_lobe"] == "1", True)
    return imaging_log_lr(CtStudy(performed=None, nodule=nodule))  # type: ignore[arg-type]


def observable_logit(row: Mapping[str, str]) -> float:
    """Log-odds of the posterior given the tabular record only (see module docstring)."""
    prior = _logit(float(row["prior_risk"]))
    labs = _logit(float(row["true_risk"])) - prior - _imaging_log_lr(row)
    without_py = prior - _PACK_YEAR_COEF * min(float(row["pack_years"]), _PACK_YEAR_CAP)
    grid = np.asarray(_pack_year_grid(row["smoking"]))
    p = 1 / (1 + np.exp(-(without_py + _PACK_YEAR_COEF * np.minimum(grid, _PACK_YEAR_CAP))))
    return math.log(float(p.mean())) - math.log(float((1 - p).mean())) + labs


def full_scores(truth: Sequence[Mapping[str, str]]) -> NDArray[np.float64]:
    return np.asarray([float(r["true_risk"]) for r in truth])


def observable_scores(truth: Sequence[Mapping[str, str]]) -> NDArray[np.float64]:
    logits = np.asarray([observable_logit(r) for r in truth], dtype=np.float64)
    return np.asarray(1 / (1 + np.exp(-logits)), dtype=np.float64)
