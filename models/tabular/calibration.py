"""Post-hoc calibration of the booster's raw score, fitted on the calibration split only.

Platt scaling (Platt 1999): p = σ(a·margin + b), two parameters, keeps the ranking (AUROC is
unchanged) and is stable with few events — the default, since the calibration split of a
cohort of a few thousand holds only ~100 cancers. Isotonic regression (Zadrozny & Elkan 2002)
is available for larger cohorts; it is stored as its knots and applied by interpolation.
Both serialise to JSON (no pickle in the registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

Method = Literal["platt", "isotonic"]


@dataclass(frozen=True)
class Calibrator:
    method: Method
    params: dict[str, Any]

    def __call__(self, margin: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.method == "platt":
            z = self.params["a"] * margin + self.params["b"]
            return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)
        xs, ys = self.params["x"], self.params["y"]
        return np.asarray(np.interp(margin, xs, ys), dtype=np.float64)

    def scalar(self, margin: float) -> float:
        """One patient's risk without array overhead (the hook's path)."""
        if self.method == "platt":
            return float(1.0 / (1.0 + np.exp(-(self.params["a"] * margin + self.params["b"]))))
        return float(np.interp(margin, self.params["x"], self.params["y"]))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, **self.params}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        method = data.get("method")
        if method == "platt":
            return cls("platt", {"a": float(data["a"]), "b": float(data["b"])})
        if method == "isotonic":
            return cls("isotonic", {"x": list(data["x"]), "y": list(data["y"])})
        raise ValueError(f"unknown calibration method {method!r}")


def fit(method: Method, margin: NDArray[np.float64], y: NDArray[np.int_]) -> Calibrator:
    if method == "platt":
        lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
        lr.fit(margin.reshape(-1, 1), y)
        return Calibrator(
            "platt", {"a": round(float(lr.coef_[0, 0]), 8), "b": round(float(lr.intercept_[0]), 8)}
        )
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(margin, y)
    return Calibrator(
        "isotonic",
        {
            "x": [round(float(v), 8) for v in iso.X_thresholds_],
            "y": [round(float(v), 8) for v in iso.y_thresholds_],
        },
    )
