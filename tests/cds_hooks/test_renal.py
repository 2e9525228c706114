"""CKD-EPI 2021 against published worked values (clinical-reference.md §4)."""

from __future__ import annotations

import pytest

from cds_hooks.clinical.renal import creatinine_to_mg_dl, egfr_ckd_epi_2021


@pytest.mark.parametrize(
    ("sex", "age", "value", "unit", "expected"),
    [
        ("male", 70, 200, "umol/L", 30.40),  # NKF calculator oracle: 30
        ("female", 70, 200, "umol/L", 22.75),  # 23
        ("male", 70, 100, "umol/L", 69.83),  # 70
        ("female", 70, 100, "umol/L", 52.27),  # 52
        ("female", 55, 0.90, "mg/dL", 75.50),  # "about 76"
        ("male", 50, 1.10, "mg/dL", 81.78),  # 82
        ("male", 40, 0.90, "mg/dL", 110.73),  # Scr = κ: both spline terms are 1
        ("female", 40, 0.70, "mg/dL", 112.05),
        ("female", 80, 3.00, "mg/dL", 15.24),
    ],
)
def test_worked_values(sex: str, age: int, value: float, unit: str, expected: float) -> None:
    scr = creatinine_to_mg_dl(value, unit)
    assert egfr_ckd_epi_2021(scr, age, sex) == pytest.approx(expected, abs=0.02)  # type: ignore[arg-type]


def test_not_the_2009_equation() -> None:
    # The superseded 2009 equation gives 28.29 for this patient; 2021 gives 30.40.
    assert egfr_ckd_epi_2021(200 / 88.4, 70, "male") > 30


@pytest.mark.parametrize(("scr", "age"), [(0, 50), (-1, 50), (1.0, 17)])
def test_refuses_impossible_inputs(scr: float, age: int) -> None:
    with pytest.raises(ValueError):
        egfr_ckd_epi_2021(scr, age, "female")


def test_units() -> None:
    assert creatinine_to_mg_dl(1.0, "mg/dL") == 1.0
    assert creatinine_to_mg_dl(0.0884, "mmol/L") == pytest.approx(1.0)
    with pytest.raises(ValueError):
        creatinine_to_mg_dl(1.0, "g/L")
