"""Training on a small synthetic cohort: metrics well above chance, a complete model card, and
equal artifacts from equal seeds."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score  # type: ignore[import-untyped]

from cdw.features import feature_names
from models.tabular import cohort, metrics
from models.tabular.train import MODEL_FILE, TrainConfig, Trained, split, train

REPEAT = TrainConfig(seed=3, bootstrap=100)


def test_metrics_are_well_above_chance(trained: Trained) -> None:
    m = trained.card["metrics"]
    test = m["test"]
    assert test["auroc"]["value"] > 0.7 and test["auroc"]["ci_low"] > 0.55
    assert test["auprc"]["value"] > 2 * test["positives"] / test["n"]  # vs a random ranking
    assert test["ece"]["value"] < 0.1
    for ceiling in ("full", "observable"):  # same patients, the generator's exact posteriors
        assert m["ceiling"][ceiling]["n"] == test["n"]
        assert m["ceiling"][ceiling]["auroc"]["value"] >= test["auroc"]["value"] - 0.05
    assert m["ceiling"]["full"]["auroc"]["value"] >= m["ceiling"]["observable"]["auroc"]["value"]
    ratio = m["auroc_ratio"]["to_observable_ceiling"]
    assert ratio["ci_low"] <= ratio["value"] <= ratio["ci_high"]


def test_model_card_holds_what_the_issue_asks(trained: Trained) -> None:
    card = trained.card
    assert {"task", "training_data", "features", "metrics", "calibration", "intended_use",
            "limits"} <= set(card)  # fmt: skip
    assert len(card["training_data"]["fingerprint"]) == 64
    names = [f["name"] for f in card["features"]]
    assert names == feature_names() and all(f["unit"] for f in card["features"])
    assert card["calibration"]["method"] == "platt"
    splits = card["training_data"]["splits"]
    assert sum(s["patients"] for s in splits.values()) == card["training_data"]["patients"]
    orjson.dumps(card)  # serialisable as it is saved


def test_equal_seeds_give_equal_artifacts(small_cohort: cohort.TrainingSet) -> None:
    first, second = train(small_cohort, REPEAT), train(small_cohort, REPEAT)
    assert first.files == second.files
    other = train(small_cohort, TrainConfig(seed=4, bootstrap=100))
    assert other.files[MODEL_FILE] != first.files[MODEL_FILE]


def test_split_is_by_patient_stratified_and_order_free(small_cohort: cohort.TrainingSet) -> None:
    ids, y = small_cohort.person_ids, small_cohort.labels
    s = split(ids, y, 0)
    parts = [s.fit, s.stop, s.calibration, s.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(ids)))
    for part in parts:
        assert abs(y[part].mean() - y.mean()) < 0.03
    reverse = np.arange(len(ids))[::-1]
    s2 = split([ids[i] for i in reverse], y[reverse], 0)
    assert sorted(ids[reverse[i]] for i in s2.test) == sorted(ids[i] for i in s.test)


def test_too_few_cancers_is_refused(small_cohort: cohort.TrainingSet) -> None:
    negatives = np.flatnonzero(small_cohort.labels == 0)[:200].tolist()
    keep = [*negatives, int(np.flatnonzero(small_cohort.labels == 1)[0])]
    tiny = cohort.TrainingSet(
        [small_cohort.rows[i] for i in keep], small_cohort.labels[keep],
        [small_cohort.members[i] for i in keep], 0, 0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="too few"):
        train(tiny, REPEAT)


def test_metrics_match_scikit_learn_and_ece_is_binned_calibration() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.round(np.clip(rng.random(400) * 0.6 + 0.3 * y, 0, 1), 2)  # with ties
    assert metrics.auroc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert metrics.auprc(y, p) == pytest.approx(average_precision_score(y, p))
    calibrated = rng.random(20000)
    outcomes = (rng.random(20000) < calibrated).astype(int)
    assert metrics.ece(outcomes, calibrated) < 0.02
    assert metrics.ece(outcomes, np.clip(calibrated + 0.2, 0, 1)) > 0.15
