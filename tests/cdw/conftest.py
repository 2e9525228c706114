"""Fixtures of the CDW tests: the pseudonymiser and an ETL runner over the facade's database
(the cohort itself is in `cdw_cohort`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cdw_cohort import KEY

from cdw.etl import Etl
from cdw.pseudonym import Pseudonymizer


@pytest.fixture
def pz() -> Pseudonymizer:
    return Pseudonymizer(KEY)


@pytest.fixture
def cdw_url(database_url: str, tmp_path: Path) -> str:
    """The CDW shares the facade's database (the harder case: both schemas side by side)."""
    return database_url


@pytest.fixture
def etl(database_url: str, cdw_url: str, pz: Pseudonymizer) -> Iterator[Etl]:
    runner = Etl(database_url, cdw_url, pz, batch_size=7)
    try:
        yield runner
    finally:
        runner.close()
