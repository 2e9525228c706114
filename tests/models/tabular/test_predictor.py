"""Loading a registry version, scoring one patient and explaining the score in clinical terms."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pytest

from cdw.features import FeatureRow
from cdw.features_fhir import features_from_fhir
from cdw.pseudonym import Pseudonymizer
from models.registry import ModelRegistry, ModelVersion, RegistryError
from models.tabular import cohort, spec
from models.tabular.predictor import RiskModel, missing_data
from models.tabular.synthetic import patient_record
from models.tabular.train import FEATURES_FILE, MODEL_FILE, Trained
from simulators.cohort.model import CohortGenerator


def test_score_matches_the_training_pipeline(
    promoted: ModelVersion, trained: Trained, small_cohort: cohort.TrainingSet
) -> None:
    model = RiskModel(promoted)
    rows = small_cohort.rows[:40]
    margins = trained.booster.predict(np.vstack([model.vector(r) for r in rows]), raw_score=True)
    expected = trained.calibrator(np.asarray(margins, dtype=np.float64))
    assert [model.risk(r) for r in rows] == pytest.approx(expected.tolist(), rel=1e-9)
    assert 0 < min(expected) < max(expected) < 1


def test_explanations_name_clinical_features_and_add_up(
    promoted: ModelVersion, small_cohort: cohort.TrainingSet
) -> None:
    model = RiskModel(promoted)
    labels = {f.label for f in map(spec.info, model.names)}
    for row in small_cohort.rows[:20]:
        x = model.vector(row)
        contrib = model.booster.predict(x, pred_contrib=True)[0]
        assert contrib.sum() == pytest.approx(model.margin(x), abs=1e-6)  # TreeSHAP is exact
        score = model.score(row)
        assert len(score.drivers) == 3
        sizes = [abs(d.contribution) for d in score.drivers]
        assert sizes == sorted(sizes, reverse=True)
        assert max(abs(contrib[:-1])) * model.calibrator.params["a"] == pytest.approx(sizes[0])
        for d in score.drivers:
            assert d.label in labels and not d.label.startswith("lab_")
            value = row.values[d.name]
            assert d.value == (None if value is None else float(value))
            assert d.shown == spec.format_value(d.name, d.value)
            assert d.to_json()["direction"] in ("raises", "lowers")


def test_feature_labels_and_units() -> None:
    assert spec.info("lab_2160-0_latest").label == "Creatinine (latest)"
    assert spec.info("lab_2160-0_latest").unit == "mg/dL"
    assert spec.info("lab_2160-0_slope_per_year").unit == "mg/dL/year"
    assert spec.format_value("lab_2160-0_latest", 1.234) == "1.23 mg/dL"
    assert spec.format_value("smoking_current", 1.0) == "yes"
    assert spec.format_value("age", 67.0) == "67 years"
    assert spec.format_value("lab_718-7_latest", None) == "not recorded"
    with pytest.raises(KeyError):
        spec.info("lab_0000-0_latest")


def test_too_little_data_is_named(pz: Pseudonymizer) -> None:
    patient = CohortGenerator(9, cohort.SYNTHETIC_INDEX).patient(1)
    full = patient_record(patient, "p-full")
    assert missing_data(features_from_fhir(full, cohort.SYNTHETIC_INDEX, pz)) == []
    bare = [r for r in full if r["resourceType"] == "Patient"]
    assert missing_data(features_from_fhir(bare, cohort.SYNTHETIC_INDEX, pz)) == [
        "smoking status",
        "laboratory results",
    ]
    nothing = FeatureRow("person-at-index", "2", 1, date(2024, 1, 1), {}, "")
    assert missing_data(nothing)[:2] == ["age (birth date)", "sex"]


def _copy(models_dir: Path, tmp_path: Path) -> tuple[ModelRegistry, ModelVersion]:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    reg = ModelRegistry(root)
    version = reg.promoted("oncology-risk")
    assert version is not None
    return reg, version


def test_a_corrupt_or_stale_model_is_refused_at_load(models_dir: Path, tmp_path: Path) -> None:
    reg, version = _copy(models_dir, tmp_path)
    (version.path / MODEL_FILE).write_text("tree\nbroken")
    with pytest.raises(RegistryError, match="corrupt"):
        RiskModel(version)
    reg, version = _copy(models_dir, tmp_path / "stale")
    meta = orjson.loads((version.path / FEATURES_FILE).read_bytes())
    stale = reg.save(
        "oncology-risk",
        {
            MODEL_FILE: version.path / MODEL_FILE,
            "calibration.json": version.path / "calibration.json",
            FEATURES_FILE: orjson.dumps({**meta, "version": "1"}),
        },
        version.card,
    )
    with pytest.raises(RegistryError, match="trained on feature set person-at-index v1"):
        RiskModel(stale)
