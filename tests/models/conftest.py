"""Fixtures of the model tests (see risk_support: built once per process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdw.pseudonym import Pseudonymizer
from models.registry import ModelRegistry, ModelVersion
from models.tabular import cohort
from models.tabular.train import Trained
from tests.models import risk_support


@pytest.fixture(scope="session")
def pz() -> Pseudonymizer:
    return risk_support.PZ


@pytest.fixture(scope="session")
def small_cohort() -> cohort.TrainingSet:
    return risk_support.small_cohort()


@pytest.fixture(scope="session")
def trained() -> Trained:
    return risk_support.trained()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return risk_support.models_dir()


@pytest.fixture(scope="session")
def promoted(models_dir: Path) -> ModelVersion:
    version = ModelRegistry(models_dir).promoted("oncology-risk")
    assert version is not None
    return version
