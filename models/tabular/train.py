"""Fit, calibrate and evaluate the lung-cancer risk model; save it with its card to the registry.

Split by patient (one row per patient, stratified by outcome, seeded): 48 % fit, 12 % early
stopping, 20 % calibration, 20 % test. LightGBM runs with one thread and `deterministic=True`,
so equal seeds and data give byte-equal artifacts (the card's `created` aside). Test metrics sit
next to the Bayes-optimal ceilings on the same patients (see `ceiling`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
from numpy.typing import NDArray

from cdw import features as feature_set
from models.registry import ModelRegistry, ModelVersion
from models.tabular import MODEL_NAME, calibration, ceiling, metrics, spec
from models.tabular.card_text import INTENDED_USE, LIMITS, MIN_DATA_TEXT, REFERENCES, TASK
from models.tabular.cohort import HORIZON_DAYS, TrainingSet

log = logging.getLogger(__name__)
MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE = "model.txt", "calibration.json", "features.json"
GOAL = {"auroc_ratio_min": 0.95, "ece_max": 0.03}


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    calibration: calibration.Method = "platt"
    learning_rate: float = 0.03
    num_leaves: int = 7
    min_data_in_leaf: int = 30
    max_rounds: int = 3000
    early_stopping_rounds: int = 150
    bootstrap: int = 1000
    params: dict[str, Any] = field(default_factory=dict)  # extra LightGBM parameters

    def lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "max_bin": 63,
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "seed": self.seed,
            "verbose": -1,
            **self.params,
        }


@dataclass(frozen=True)
class Splits:
    fit: NDArray[np.int_]
    stop: NDArray[np.int_]
    calibration: NDArray[np.int_]
    test: NDArray[np.int_]


def split(person_ids: list[int], labels: NDArray[np.int_], seed: int) -> Splits:
    """Stratified by outcome, by patient; independent of the rows' order."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"fit": [], "stop": [], "calibration": [], "test": []}
    order = np.argsort(np.asarray(person_ids), kind="stable")
    for cls in (0, 1):
        members = order[labels[order] == cls]
        members = members[rng.permutation(len(members))]
        cuts = (np.array([0.48, 0.60, 0.80]) * len(members)).round().astype(int)
        for name, chunk in zip(parts, np.split(members, cuts), strict=True):
            parts[name].extend(int(i) for i in chunk)
    arrays = {k: np.sort(np.asarray(v, dtype=np.int_)) for k, v in parts.items()}
    return Splits(**arrays)


def fit_booster(
    x: NDArray[np.float64], y: NDArray[np.int_], s: Splits, config: TrainConfig, names: list[str]
) -> lgb.Booster:
    train = lgb.Dataset(x[s.fit], y[s.fit], feature_name=names, free_raw_data=False)
    stop = lgb.Dataset(x[s.stop], y[s.stop], reference=train)
    return lgb.train(
        config.lgb_params(),
        train,
        num_boost_round=config.max_rounds,
        valid_sets=[stop],
        valid_names=["stop"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )


def _count(y: NDArray[np.int_], idx: NDArray[np.int_]) -> dict[str, int]:
    return {"patients": len(idx), "cancers": int(y[idx].sum())}


def evaluate(
    data: TrainingSet, risk: NDArray[np.float64], test: NDArray[np.int_], config: TrainConfig
) -> dict[str, Any]:
    """Model metrics on the test split beside both ceilings on the same patients."""
    y = data.labels[test]
    truth = [data.members[i].truth for i in test]
    full, observable = ceiling.full_scores(truth), ceiling.observable_scores(truth)
    n, seed = config.bootstrap, config.seed
    model = metrics.summary(y, risk[test], n=n, seed=seed)
    return {
        "test": model,
        "ceiling": {
            "full": metrics.summary(y, full, n=n, seed=seed),
            "observable": metrics.summary(y, observable, n=n, seed=seed),
        },
        "auroc_ratio": {
            "to_full_ceiling": metrics.ratio_with_ci(y, risk[test], full, n=n, seed=seed),
            "to_observable_ceiling": metrics.ratio_with_ci(
                y, risk[test], observable, n=n, seed=seed
            ),
        },
        "goal": GOAL,
        "reliability": metrics.reliability(y, risk[test]),
    }


@dataclass(frozen=True)
class Trained:
    booster: lgb.Booster
    calibrator: calibration.Calibrator
    card: dict[str, Any]
    files: dict[str, bytes]


def train(data: TrainingSet, config: TrainConfig | None = None) -> Trained:
    """The fitted model, its calibrator, its card and the bytes of its artifacts."""
    config = config or TrainConfig()
    if data.labels.sum() < 10 or len(data.labels) - data.labels.sum() < 10:
        raise ValueError(
            f"{int(data.labels.sum())} cancers among {len(data.labels)} patients: too few "
            "of either outcome to train and evaluate; seed a larger cohort"
        )
    names, x = feature_set.to_matrix(data.rows)
    y = data.labels
    s = split(data.person_ids, y, config.seed)
    booster = fit_booster(x, y, s, config, names)
    best = booster.best_iteration or booster.current_iteration()
    margin = np.asarray(booster.predict(x, num_iteration=best, raw_score=True), dtype=np.float64)
    cal = calibration.fit(config.calibration, margin[s.calibration], y[s.calibration])
    risk = cal(margin)
    log.info("trained %d trees; evaluating on %d test patients", best, len(s.test))
    card = _card(data, config, s, best, cal, evaluate(data, risk, s.test, config))
    files = {
        MODEL_FILE: booster.model_to_string(num_iteration=best).encode(),
        CALIBRATION_FILE: orjson.dumps(cal.to_json(), option=orjson.OPT_SORT_KEYS),
        FEATURES_FILE: orjson.dumps(
            {"set": feature_set.NAME, "version": feature_set.VERSION, "names": names}
        ),
    }
    return Trained(booster, cal, card, files)


def _card(
    data: TrainingSet,
    config: TrainConfig,
    s: Splits,
    best: int,
    cal: calibration.Calibrator,
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    y = data.labels
    return {
        "task": TASK,
        "outcome": {"definition": "lung cancer condition in the CDW", "horizon_days": HORIZON_DAYS},
        "model": {
            "type": "LightGBM gradient-boosted trees, binary objective",
            "lightgbm": lgb.__version__,
            "trees": best,
            "params": config.lgb_params(),
            "seed": config.seed,
        },
        "training_data": {
            "source": data.source,
            "fingerprint": feature_set.set_fingerprint(data.rows),
            "feature_set": {"name": feature_set.NAME, "version": feature_set.VERSION},
            "patients": len(y),
            "cancers": int(y.sum()),
            "unlinked_truth_rows": data.unlinked,
            "outcome_disagreements_with_truth": data.label_disagreements,
            "splits": {k: _count(y, v) for k, v in asdict(s).items()},
            "split_rule": "by patient, stratified by outcome: 48/12/20/20 % fit/stop/cal/test",
        },
        "features": spec.describe_all(),
        "metrics": evaluation,
        "calibration": {
            **cal.to_json(),
            "fitted_on": "calibration split",
            "ece_bins": "10 equal-width bins",
        },
        "minimum_data": MIN_DATA_TEXT,
        "intended_use": INTENDED_USE,
        "limits": LIMITS,
        "references": REFERENCES,
    }


def save(registry: ModelRegistry, trained: Trained, *, promote: bool = False) -> ModelVersion:
    version = registry.save(MODEL_NAME, trained.files, trained.card)
    return registry.promote(MODEL_NAME, version.version) if promote else version
