"""The prose of the risk model's card: task, intended use, limits, references."""

from __future__ import annotations

TASK = (
    "Probability that an adult is diagnosed with lung cancer within 12 months of the index "
    "date (binary classification), from routinely recorded data: age, sex, smoking status, "
    "laboratory results and their trends, imaging history, the imaging AI's pulmonary-nodule "
    "findings on prior CTs (feature set v3) and prior conditions."
)
MIN_DATA_TEXT = (
    "No score without age, sex, a recorded smoking status and at least one laboratory result "
    "of the model's panel: the model was trained only on patients with all of these."
)
INTENDED_USE = (
    "Decision support for clinicians reviewing a patient or ordering chest imaging: flags "
    "patients whose recorded data suggest a raised risk, to prompt consideration of "
    "guideline-based assessment. Not a diagnosis, not a screening eligibility rule, and not "
    "for use without clinical judgement."
)
LIMITS = [
    "Trained and evaluated on a synthetic cohort whose generating process is known "
    "(simulators/cohort/model.py); performance on real populations is unknown until it is "
    "validated on local data.",
    "Does not see pack-years (not recorded in a coded field) nor the CT itself: it reads the "
    "imaging AI's nodule probability (no size, no lobe), so its ceiling is the full-information "
    "posterior; the 'tabular record' ceiling (the posterior without any imaging information) "
    "is still reported and is exceeded by design since feature set v3.",
    "Trained on synthetic AI findings drawn from a noise model of the imaging CNN "
    "(models/tabular/synthetic_ai.py: binormal scores, detectability rising with nodule size, "
    "AUROC ~1.0 from 10 mm, 0.86 at 5 mm); on real data the model should be retrained on the "
    "findings the pipeline actually wrote, since a different imaging model changes the "
    "meaning of the probability.",
    "Patients without an AI-read CT have the AI features missing (not zero): the model "
    "scores them from the rest of the record.",
    "Latest laboratory values are used whatever their age; a record whose results are years "
    "old is outside the training distribution (every training patient had results in the "
    "24 months before the index date).",
    "Calibrated on a held-out split of the same cohort; recalibrate before use at another "
    "site or for another population (prevalence shifts move absolute risks).",
]
REFERENCES = [
    "Ke G et al. LightGBM: a highly efficient gradient boosting decision tree. NeurIPS 2017.",
    "Lundberg SM et al. From local explanations to global understanding with explainable AI "
    "for trees (TreeSHAP, LightGBM pred_contrib). Nat Mach Intell 2020.",
    "Platt J. Probabilistic outputs for support vector machines. 1999.",
    "Guo C et al. On calibration of modern neural networks (ECE). ICML 2017.",
    "Tammemägi MC et al. Selection criteria for lung-cancer screening (PLCOm2012). "
    "N Engl J Med 2013 — the risk factors the synthetic cohort stylises.",
    "Mitchell M et al. Model cards for model reporting. FAT* 2019.",
]
