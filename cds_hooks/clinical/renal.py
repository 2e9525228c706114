"""Estimated GFR by the CKD-EPI 2021 creatinine equation (race-free).

Source: Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations
to estimate GFR without race. N Engl J Med 2021;385:1737-1749; constants as published by the
National Kidney Foundation (kidney.org/ckd-epi-creatinine-equation-2021):

    eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^-1.200 × 0.9938^age × 1.012 [female]
    κ = 0.7 (female) / 0.9 (male); α = -0.241 (female) / -0.302 (male)

Scr is IDMS-traceable serum creatinine in mg/dL; the result is mL/min/1.73 m² (LOINC 98979-8).
"""

from __future__ import annotations

from typing import Literal

Sex = Literal["female", "male"]
CITATION = "CKD-EPI 2021 creatinine equation (Inker LA et al., N Engl J Med 2021;385:1737-49)"
EGFR_LOINC = "98979-8"
EGFR_UNIT = "mL/min/{1.73_m2}"
UMOL_PER_MG_DL = 88.4


def egfr_ckd_epi_2021(creatinine_mg_dl: float, age_years: float, sex: Sex) -> float:
    """eGFR in mL/min/1.73 m² for an adult (age ≥ 18); raises on impossible inputs."""
    if creatinine_mg_dl <= 0:
        raise ValueError("serum creatinine must be positive")
    if age_years < 18:
        raise ValueError("CKD-EPI 2021 applies to adults (age ≥ 18)")
    kappa, alpha, factor = (0.7, -0.241, 1.012) if sex == "female" else (0.9, -0.302, 1.0)
    ratio = creatinine_mg_dl / kappa
    return float(
        142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age_years * factor
    )


def creatinine_to_mg_dl(value: float, unit: str) -> float:
    """Creatinine in mg/dL from mg/dL, umol/L or mmol/L (1 mg/dL = 88.4 µmol/L)."""
    normalized = unit.replace("µ", "u").strip()
    if normalized == "mg/dL":
        return value
    if normalized == "umol/L":
        return value / UMOL_PER_MG_DL
    if normalized == "mmol/L":
        return value * 1000 / UMOL_PER_MG_DL
    raise ValueError(f"unsupported creatinine unit {unit!r}")
