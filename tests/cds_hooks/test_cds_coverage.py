"""docs/cds-hooks-coverage.md stays honest: every service-side SHALL row of the requirements CSV
is listed, and every test it names exists."""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CSV = ROOT.parent / "shared/docs/requirements/cds-hooks-2.0-and-library-1.0.1-requirements.csv"
DOC = ROOT / "docs" / "cds-hooks-coverage.md"


def _rows() -> set[tuple[str, str]]:
    with CSV.open() as f:
        rows = list(csv.DictReader(f))
    return {
        ("2.0" if r["Req Set"] == "cds-hooks_2.0" else "Library 1.0.1", r["ID"])
        for r in rows
        if r["Conformance"] in ("SHALL", "SHALL NOT")
        and (
            ("Service" in r["Actors"] and r["Req Set"] == "cds-hooks_2.0")
            or r["Actors"] == "Server"
        )
    }


def test_every_service_shall_row_is_in_the_coverage_table() -> None:
    listed = set(re.findall(r"^\| (2\.0|Library 1\.0\.1) \| (\d+) \|", DOC.read_text(), re.M))
    assert _rows() - listed == set()


def test_every_test_the_table_names_exists() -> None:
    named = set(re.findall(r"`(test_cds_\w+\.py)::(test_\w+)`", DOC.read_text()))
    assert named
    for module, test in named:
        tree = ast.parse((HERE / module).read_text())
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert test in functions, f"{module}::{test} is named in the coverage table"
