"""The laboratory analytes the cohort measures, with their distributions in the population.

Values are drawn per patient as baseline + (cancer shift on the latest panel) + noise; skewed
analytes (tumour markers, CRP, LDH) are modelled on the log scale. The numbers are plausible
adult ranges (reference intervals as commonly reported), not fitted to any dataset: the cohort
only needs coherent data whose generating process is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Analyte:
    keyword: str  # SENAITE AnalysisService keyword (the simulator's catalogue)
    unit: str  # UCUM
    mean: float  # population mean of the baseline (log scale when log=True)
    between_sd: float  # spread of patients' baselines
    within_sd: float  # visit-to-visit noise
    cancer_shift: float = 0.0  # added to the latest value when the patient has cancer
    smoker_shift: float = 0.0  # added to the baseline of current smokers (a known confounder)
    log: bool = False
    decimals: int = 1
    male_shift: float = 0.0
    marker: bool = False  # tumour marker: measured only in some panels


ANALYTES: tuple[Analyte, ...] = (
    Analyte("CREA", "mg/dL", 0.85, 0.12, 0.06, decimals=2, male_shift=0.2),
    Analyte("HGB", "g/dL", 13.6, 0.9, 0.4, cancer_shift=-0.25, male_shift=1.3),
    Analyte("WBC", "10*3/uL", 7.0, 1.4, 0.8, smoker_shift=0.8),
    Analyte("PLT", "10*3/uL", 250.0, 45.0, 20.0, cancer_shift=12.0, decimals=0),
    Analyte("CRP", "mg/L", 0.7, 0.6, 0.35, cancer_shift=0.3, log=True),
    Analyte(
        "CEA", "ng/mL", 0.5, 0.4, 0.15, cancer_shift=0.12, smoker_shift=0.35, log=True, marker=True
    ),
    Analyte("CA199", "[U]/mL", 2.3, 0.5, 0.2, cancer_shift=0.08, log=True, marker=True),
    Analyte("AFP", "ng/mL", 1.0, 0.4, 0.2, log=True, marker=True),
    Analyte("LDH", "U/L", 5.2, 0.15, 0.07, cancer_shift=0.04, log=True, decimals=0),
    Analyte("ALB", "g/dL", 4.2, 0.3, 0.15, cancer_shift=-0.08),
    Analyte("ALT", "U/L", 3.1, 0.35, 0.2, log=True, decimals=0),
    Analyte("AST", "U/L", 3.1, 0.3, 0.2, log=True, decimals=0),
    Analyte("GLU", "mg/dL", 95.0, 10.0, 8.0, decimals=0),
    Analyte("K", "mmol/L", 4.3, 0.3, 0.2),
    Analyte("NA", "mmol/L", 140.0, 2.0, 1.5, decimals=0),
)
"""Analytes of every routine panel (creatinine → eGFR is computed from creat by CKD-EPI 2021)."""

DIABETES_GLUCOSE_SHIFT = 45.0
HBA1C = Analyte("HBA1C", "%", 5.4, 0.3, 0.15, decimals=1)
HBA1C_DIABETES_SHIFT = 2.0
CKD_CREATININE_FACTOR = 2.2
PSA = Analyte("PSA", "ng/mL", 0.2, 0.7, 0.2, log=True, decimals=2)
