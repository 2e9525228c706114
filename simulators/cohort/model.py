"""The synthetic cohort's generative model, with each patient's exact risk.

Generative assumptions (documented because the models issue measures against them):
1. Demographics: age at the index date uniform 40-85, sex 50/50, smoking never 45 % / former
   35 % / current 20 %, pack-years gamma (current: mean 30, former: mean 20), COPD with
   probability 4 % / 12 % / 20 % (never/former/current), hypertension 35 %, type 2 diabetes
   12 % (metformin when present), CKD 6 %.
2. Lung cancer diagnosed within 12 months after the index date, Y ~ Bernoulli(π(x)) with
   logit π = -3.7 + 0.05 (age - 65) + 1.4 current + 0.8 former + 0.02 min(pack-years, 80)
   + 0.6 COPD + 0.2 male: a stylised version of the risk factors of PLCOm2012-type models.
3. Labs: 2-4 panels over the 24 months before the index date, the last within 60 days of it.
   Each analyte = patient baseline (N(mean, between_sd), shifted for smokers, men, diabetes,
   CKD) + visit noise N(0, within_sd); when Y = 1 the LAST panel adds the analyte's cancer
   shift (labs.py). Tumour markers are measured in each panel with probability 0.5 (MCAR).
4. Chest CT for 35 % of patients (MCAR), 0-45 days before the index date. A nodule is present
   with probability 0.9 if Y = 1 else 0.12; diameter log-normal (median 16 mm if Y = 1, 5 mm
   otherwise); upper lobe with probability 0.7 if Y = 1 else 0.4.
Because labs given Y are jointly Gaussian (compound symmetry across panels) and the imaging
findings have known likelihoods, the posterior P(Y = 1 | everything observed) is exact; it is
kept as `true_risk`, the Bayes-optimal score the trained models are compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from simulators.cohort.labs import (
    ANALYTES,
    CKD_CREATININE_FACTOR,
    DIABETES_GLUCOSE_SHIFT,
    HBA1C,
    HBA1C_DIABETES_SHIFT,
    Analyte,
)

SMOKING = ("never", "former", "current")
_SMOKING_P = (0.45, 0.35, 0.20)
_COPD_P = {"never": 0.04, "former": 0.12, "current": 0.20}
_NODULE_P = (0.12, 0.9)  # P(nodule | Y=0), P(nodule | Y=1)
_NODULE_LOG_MEDIAN = (math.log(5.0), math.log(16.0))
_NODULE_LOG_SD = 0.35
_UPPER_P = (0.4, 0.7)
_FIRST = (
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Eva",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luis",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Sami",
    "Tara",
    "Victor",
)
_LAST = (
    "Moreau",
    "Schmidt",
    "Rossi",
    "Novak",
    "Garcia",
    "Jensen",
    "Kowalski",
    "Dubois",
    "Meyer",
    "Silva",
    "Horvat",
    "Larsen",
    "Fischer",
    "Costa",
    "Weber",
    "Bauer",
)


@dataclass(slots=True)
class LabResult:
    keyword: str
    value: float
    unit: str
    taken: datetime


@dataclass(slots=True)
class Nodule:
    diameter_mm: float
    upper_lobe: bool
    right: bool
    center: tuple[float, float, float] = (0.5, 0.5, 0.5)  # x, y, z as fractions of the volume


@dataclass(slots=True)
class CtStudy:
    performed: datetime
    nodule: Nodule | None


@dataclass(slots=True)
class SyntheticPatient:
    mrn: str
    given: str
    family: str
    sex: str  # "male" | "female"
    birth_date: date
    smoking: str  # never | former | current
    pack_years: float
    conditions: list[str]  # copd, hypertension, diabetes, ckd
    labs: list[LabResult] = field(default_factory=list)
    ct: CtStudy | None = None
    cancer: bool = False
    diagnosis_date: date | None = None
    prior_risk: float = 0.0
    true_risk: float = 0.0

    def age_at(self, day: date) -> float:
        return (day - self.birth_date).days / 365.25


def prior_logit(age: float, sex: str, smoking: str, pack_years: float, copd: bool) -> float:
    return (
        -3.7
        + 0.05 * (age - 65)
        + (1.4 if smoking == "current" else 0.0)
        + (0.8 if smoking == "former" else 0.0)
        + 0.02 * min(pack_years, 80.0)
        + (0.6 if copd else 0.0)
        + (0.2 if sex == "male" else 0.0)
    )


def _baseline_mean(a: Analyte, p: SyntheticPatient) -> float:
    mean = a.mean + (a.male_shift if p.sex == "male" else 0.0)
    mean += a.smoker_shift if p.smoking == "current" else 0.0
    if a.keyword == "GLU" and "diabetes" in p.conditions:
        mean += DIABETES_GLUCOSE_SHIFT
    if a.keyword == "HBA1C" and "diabetes" in p.conditions:
        mean += HBA1C_DIABETES_SHIFT
    if a.keyword == "CREA" and "ckd" in p.conditions:
        mean *= CKD_CREATININE_FACTOR
    return mean


def _gauss_loglik(v: np.ndarray, mean: np.ndarray, tau: float, sigma: float) -> float:
    cov = tau**2 * np.ones((len(v), len(v))) + sigma**2 * np.eye(len(v))
    diff = v - mean
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * (diff @ np.linalg.solve(cov, diff) + logdet))


def lab_log_lr(a: Analyte, p: SyntheticPatient, values: list[float], last_is_index: bool) -> float:
    """log P(values | Y=1) - log P(values | Y=0) for one analyte's series (model scale)."""
    v = np.array(values)
    base = np.full(len(v), _baseline_mean(a, p))
    shifted = base.copy()
    if last_is_index:
        shifted[-1] += a.cancer_shift
    return _gauss_loglik(v, shifted, a.between_sd, a.within_sd) - _gauss_loglik(
        v, base, a.between_sd, a.within_sd
    )


def _norm_logpdf(x: float, mu: float, sd: float) -> float:
    return -0.5 * ((x - mu) / sd) ** 2 - math.log(sd)


def imaging_log_lr(ct: CtStudy) -> float:
    if ct.nodule is None:
        return math.log((1 - _NODULE_P[1]) / (1 - _NODULE_P[0]))
    d = math.log(ct.nodule.diameter_mm)
    upper = ct.nodule.upper_lobe
    return (
        math.log(_NODULE_P[1] / _NODULE_P[0])
        + _norm_logpdf(d, _NODULE_LOG_MEDIAN[1], _NODULE_LOG_SD)
        - _norm_logpdf(d, _NODULE_LOG_MEDIAN[0], _NODULE_LOG_SD)
        + math.log(
            (_UPPER_P[1] if upper else 1 - _UPPER_P[1])
            / (_UPPER_P[0] if upper else 1 - _UPPER_P[0])
        )
    )


def _decimals(a: Analyte) -> int:
    return max(a.decimals, 2) if a.log and a.mean < 3 else a.decimals


def _observe(a: Analyte, model_value: float) -> tuple[float, float]:
    """(reported value, its model-scale value): what the lab prints, and what the truth sees."""
    raw = math.exp(model_value) if a.log else model_value
    reported = round(max(raw, 10.0 ** -_decimals(a)), _decimals(a))
    return reported, (math.log(reported) if a.log else reported)


class CohortGenerator:
    """Draws patients one by one from a seeded generator (deterministic for a seed)."""

    def __init__(self, seed: int, index_date: date) -> None:
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.index_date = index_date

    def patient(self, n: int) -> SyntheticPatient:
        rng = self.rng
        sex = "male" if rng.random() < 0.5 else "female"
        age = float(rng.uniform(40, 85))
        smoking = str(rng.choice(SMOKING, p=_SMOKING_P))
        mean_py = {"never": 0.0, "former": 20.0, "current": 30.0}[smoking]
        pack_years = round(float(rng.gamma(4.0, mean_py / 4.0)), 1) if mean_py else 0.0
        conditions = [
            c
            for c, prob in (
                ("copd", _COPD_P[smoking]),
                ("hypertension", 0.35),
                ("diabetes", 0.12),
                ("ckd", 0.06),
            )
            if rng.random() < prob
        ]
        birth = self.index_date - timedelta(days=int(age * 365.25))
        p = SyntheticPatient(
            mrn=f"S{self.seed}-{n:06d}",
            given=str(rng.choice(_FIRST)),
            family=str(rng.choice(_LAST)),
            sex=sex,
            birth_date=birth,
            smoking=smoking,
            pack_years=pack_years,
            conditions=conditions,
        )
        logit = prior_logit(
            p.age_at(self.index_date), sex, smoking, pack_years, "copd" in conditions
        )
        p.prior_risk = 1 / (1 + math.exp(-logit))
        p.cancer = bool(rng.random() < p.prior_risk)
        if p.cancer:
            p.diagnosis_date = self.index_date + timedelta(days=int(rng.integers(14, 366)))
        logit += self._labs(p) + self._imaging(p)
        p.true_risk = 1 / (1 + math.exp(-logit))
        return p

    def _panel_times(self) -> list[datetime]:
        k = int(self.rng.integers(2, 5))
        days = sorted(int(d) for d in self.rng.uniform(60, 730, size=k - 1))[::-1]
        days.append(int(self.rng.uniform(1, 60)))
        hour = int(self.rng.integers(7, 12))
        return [
            datetime.combine(self.index_date - timedelta(days=d), datetime.min.time()).replace(
                hour=hour
            )
            for d in days
        ]

    def _labs(self, p: SyntheticPatient) -> float:
        """Draw every panel; return the labs' total log likelihood ratio for cancer."""
        rng, times, log_lr = self.rng, self._panel_times(), 0.0
        analytes = [*ANALYTES, HBA1C]
        for a in analytes:
            measured = [t for t in times if not a.marker or rng.random() < 0.5]
            if not measured:
                continue
            baseline = rng.normal(_baseline_mean(a, p), a.between_sd)
            seen = []
            for t in measured:
                value = baseline + rng.normal(0.0, a.within_sd)
                if p.cancer and t == times[-1]:
                    value += a.cancer_shift
                reported, model_value = _observe(a, value)
                p.labs.append(LabResult(a.keyword, reported, a.unit, t))
                seen.append(model_value)
            if a.cancer_shift:
                log_lr += lab_log_lr(a, p, seen, last_is_index=measured[-1] == times[-1])
        return log_lr

    def _imaging(self, p: SyntheticPatient) -> float:
        rng = self.rng
        if rng.random() >= 0.35:
            return 0.0
        performed = datetime.combine(
            self.index_date - timedelta(days=int(rng.integers(0, 46))), datetime.min.time()
        ).replace(hour=int(rng.integers(8, 17)))
        nodule = None
        y = int(p.cancer)
        if rng.random() < _NODULE_P[y]:
            upper = bool(rng.random() < _UPPER_P[y])
            right = bool(rng.random() < 0.55)
            diameter = float(np.exp(rng.normal(_NODULE_LOG_MEDIAN[y], _NODULE_LOG_SD)))
            center = (
                float(rng.uniform(0.22, 0.36) if right else rng.uniform(0.64, 0.78)),
                float(rng.uniform(0.38, 0.58)),
                float(rng.uniform(0.58, 0.82) if upper else rng.uniform(0.2, 0.42)),
            )
            nodule = Nodule(round(diameter, 1), upper, right, center)
        p.ct = CtStudy(performed, nodule)
        return imaging_log_lr(p.ct)


def generate(n: int, seed: int, index_date: date) -> list[SyntheticPatient]:
    gen = CohortGenerator(seed, index_date)
    return [gen.patient(i + 1) for i in range(n)]
