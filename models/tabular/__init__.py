"""The tabular lung-cancer risk model: LightGBM on the CDW feature set, calibrated, explained.

`train` fits and evaluates it against the synthetic cohort's ground truth, `predictor` loads a
registry version and scores one patient, `spec` names the features for people.
"""

MODEL_NAME = "oncology-risk"
