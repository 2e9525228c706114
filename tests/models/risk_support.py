"""The risk model's test data, built once per test process and shared by the model tests and
the CDS service tests (two conftests, one cohort).

The cohort is drawn from the generator and built as FHIR records directly
(models.tabular.synthetic), featurised by the inference path; tests/models/tabular/test_cohort.py
proves the CDW path gives the same rows for the same records. 900 patients (~75 cancers) keep
training to seconds while the held-out AUROC stays well clear of chance.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from cdw.config import DEV_KEY
from cdw.pseudonym import Pseudonymizer
from models.registry import ModelRegistry
from models.tabular import cohort
from models.tabular.train import TrainConfig, Trained, save, train

COHORT_SIZE, COHORT_SEED = 900, 5
FAST = TrainConfig(seed=3, bootstrap=200)
PZ = Pseudonymizer(DEV_KEY)


@cache
def small_cohort() -> cohort.TrainingSet:
    return cohort.synthetic(COHORT_SIZE, COHORT_SEED, PZ)


@cache
def trained() -> Trained:
    return train(small_cohort(), FAST)


@cache
def models_dir() -> Path:
    """A registry holding the trained model, promoted (tests copy it before changing it)."""
    root = Path(tempfile.mkdtemp(prefix="cdss-models-"))
    save(ModelRegistry(root), trained(), promote=True)
    return root
