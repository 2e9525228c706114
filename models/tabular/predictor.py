"""A registry version of the risk model, loaded once: score and explain one patient's features.

Loading checks everything a request would otherwise trip over — the artifacts' checksums, the
calibration file, and that the feature set this build computes is the one the model was trained
on — and raises RegistryError with the fix, so a broken model is refused at start, not mid-hook.

Explanations are LightGBM's `pred_contrib` (TreeSHAP: per-feature contributions to the raw
log-odds that sum, with the bias, to the margin), scaled by the Platt slope into calibrated
log-odds, and named with the feature's clinical label and the patient's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
from numpy.typing import NDArray

from cdw import features as feature_set
from cdw.features import FeatureRow, lab_codes
from models.registry import ModelVersion, RegistryError
from models.tabular import spec
from models.tabular.calibration import Calibrator
from models.tabular.train import CALIBRATION_FILE, FEATURES_FILE, MODEL_FILE


@dataclass(frozen=True, slots=True)
class Driver:
    name: str
    label: str
    value: float | None
    shown: str  # the value as a person reads it
    contribution: float  # calibrated log-odds

    @property
    def direction(self) -> str:
        return "raises" if self.contribution > 0 else "lowers"

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.name,
            "label": self.label,
            "value": self.value,
            "display": self.shown,
            "contribution_log_odds": round(self.contribution, 4),
            "direction": self.direction,
        }


@dataclass(frozen=True, slots=True)
class Score:
    risk: float
    drivers: tuple[Driver, ...]


def missing_data(row: FeatureRow) -> list[str]:
    """What the record lacks for a score (see card_text.MIN_DATA_TEXT); empty when enough."""
    v = row.values
    missing = []
    if v.get("age") is None:
        missing.append("age (birth date)")
    if v.get("sex_male") is None:
        missing.append("sex")
    if v.get("smoking_current") is None:
        missing.append("smoking status")
    if not any(v.get(f"lab_{code}_n") for code in lab_codes()):
        missing.append("laboratory results")
    return missing


class RiskModel:
    """The booster, its calibrator and feature order, from one registry version."""

    def __init__(self, version: ModelVersion) -> None:
        self.version = version
        try:
            self.booster = lgb.Booster(model_str=version.file(MODEL_FILE).read_text())
            self.calibrator = Calibrator.from_json(
                orjson.loads(version.file(CALIBRATION_FILE).read_bytes())
            )
            meta = orjson.loads(version.file(FEATURES_FILE).read_bytes())
        except RegistryError:
            raise
        except (ValueError, KeyError, lgb.basic.LightGBMError, orjson.JSONDecodeError) as exc:
            raise RegistryError(
                f"model {version.name} v{version.version} cannot be loaded ({exc}); "
                "retrain or promote another version"
            ) from None
        self.names: list[str] = list(meta["names"])
        current = (feature_set.NAME, feature_set.VERSION, feature_set.feature_names())
        if (meta.get("set"), meta.get("version"), self.names) != current:
            raise RegistryError(
                f"model {version.name} v{version.version} was trained on feature set "
                f"{meta.get('set')} v{meta.get('version')}; this build computes "
                f"{current[0]} v{current[1]}: retrain it (`cdss train risk`) and promote"
            )
        self.labels = [spec.info(n) for n in self.names]

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def number(self) -> int:
        return self.version.version

    def vector(self, row: FeatureRow) -> NDArray[np.float64]:
        values = row.values
        out = np.full((1, len(self.names)), np.nan)
        for j, name in enumerate(self.names):
            value = values.get(name)
            if value is not None:
                out[0, j] = value
        return out

    def margin(self, x: NDArray[np.float64]) -> float:
        return float(self.booster.predict(x, raw_score=True, num_threads=1)[0])

    def risk(self, row: FeatureRow) -> float:
        return self.calibrator.scalar(self.margin(self.vector(row)))

    def explain(self, x: NDArray[np.float64], top: int = 3) -> tuple[Driver, ...]:
        contrib = self.booster.predict(x, pred_contrib=True, num_threads=1)[0][:-1]  # last: bias
        scale = float(self.calibrator.params.get("a", 1.0))
        order = np.argsort(-np.abs(contrib), kind="stable")[:top]
        drivers = []
        for j in order:
            value = None if np.isnan(x[0, j]) else float(x[0, j])
            name = self.names[j]
            drivers.append(
                Driver(name, self.labels[j].label, value, spec.format_value(name, value),
                       float(contrib[j]) * scale)
            )  # fmt: skip
        return tuple(drivers)

    def score(self, row: FeatureRow, top: int = 3) -> Score:
        """Calibrated risk and the top drivers of one patient's features."""
        x = self.vector(row)
        return Score(self.calibrator.scalar(self.margin(x)), self.explain(x, top))
