"""Serving the imaging model: sliding-window inference on one volume -> one Finding.

The probability is the Platt-calibrated peak logit of the heatmap (calibrated on a split the
network never trained on); the location is the peak voxel, mapped through the preprocessed
image's affine to patient millimetres, then to the nearest original slice and its pixel, which is
what the FHIR Observation and the DICOM SR point at (docs/ai-findings.md).
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.data.meta_tensor import MetaTensor
from monai.inferers.inferer import SlidingWindowInferer

from models.imaging.config import ImagingConfig
from models.imaging.network import build_network
from models.imaging.transforms import preprocess
from models.imaging.volume import Volume
from models.registry import ModelRegistry, ModelVersion, RegistryError

MODEL_NAME = "lung-nodule-ct"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True, slots=True)
class Finding:
    """What the model says about one series; location fields are None when absent."""

    probability: float
    present: bool
    score: float  # the raw peak logit
    model: str  # "<name>@<version>"
    series_uid: str
    centre_mm: tuple[float, float, float] | None
    sop_uid: str | None
    pixel_row: int | None
    pixel_column: int | None
    slice_index: int | None


def load_weights(network: torch.nn.Module, data: bytes) -> None:
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    network.load_state_dict(state)


def weights_bytes(network: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, buf)
    return buf.getvalue()


class Predictor:
    """A loaded network with its preprocessing config and calibration; thread-safe predict."""

    def __init__(
        self,
        network: torch.nn.Module,
        config: ImagingConfig,
        calibration: tuple[float, float],
        *,
        model: str,
        device: str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.config = config
        self.calibration = calibration
        self.model = model
        self.inferer = SlidingWindowInferer(
            roi_size=config.roi_size,
            sw_batch_size=32,  # windows per forward call: small windows batch well on CPU
            overlap=0.25,
            mode="gaussian",
            cache_roi_weight_map=True,
        )
        self._lock = threading.Lock()

    @classmethod
    def from_version(cls, version: ModelVersion, device: str = "cpu") -> Predictor:
        card = version.card
        try:
            config = ImagingConfig.from_json(card["config"])
            cal = card["calibration"]
            calibration = (float(cal["a"]), float(cal["b"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(
                f"model {version.name} v{version.version}: card lacks config/calibration ({exc})"
            ) from None
        network = build_network(config)
        load_weights(network, version.file(WEIGHTS_FILE).read_bytes())
        return cls(
            network, config, calibration, model=f"{version.name}@{version.version}", device=device
        )

    @classmethod
    def promoted(cls, registry: ModelRegistry, device: str = "cpu") -> Predictor:
        version = registry.promoted(MODEL_NAME)
        if version is None:
            raise RegistryError(
                f"no promoted version of {MODEL_NAME} in {registry.root}: run "
                f"`cdss train imaging` then `cdss models promote {MODEL_NAME} <version>`"
            )
        return cls.from_version(version, device)

    def probability(self, score: float) -> float:
        a, b = self.calibration
        return 1.0 / (1.0 + math.exp(-(a * score + b)))

    def heatmap(self, image: MetaTensor) -> torch.Tensor:
        """Logits (1, 1, I, J, K) by sliding window (the MetaTensor keeps its affine)."""
        with self._lock, torch.inference_mode():
            out = self.inferer(image[None].to(self.device), self.network)
        assert isinstance(out, torch.Tensor)
        return out.cpu()

    def forward_only(self, image: MetaTensor) -> torch.Tensor:
        """The network's forward pass alone on the whole image: the benchmark's floor."""
        with self._lock, torch.inference_mode():
            out = self.network(image.as_tensor()[None].to(self.device))
        assert isinstance(out, torch.Tensor)
        return out

    def peak(self, volume: Volume) -> tuple[float, tuple[float, float, float]]:
        """The heatmap's peak logit and where it is (patient LPS mm), present or not."""
        image = preprocess(volume, self.config, fixed_size=False)
        logits = self.heatmap(image)[0, 0]
        flat = int(torch.argmax(logits))
        peak = np.unravel_index(flat, tuple(logits.shape))
        mm = image.affine.numpy() @ np.array([*(float(p) for p in peak), 1.0])
        return float(logits.reshape(-1)[flat]), (float(mm[0]), float(mm[1]), float(mm[2]))

    def predict(self, volume: Volume) -> Finding:
        score, centre = self.peak(volume)
        probability = self.probability(score)
        present = probability >= self.config.threshold
        base: dict[str, Any] = {
            "probability": probability,
            "present": present,
            "score": score,
            "model": self.model,
            "series_uid": volume.series_uid,
        }
        if not present:
            return Finding(
                **base,
                centre_mm=None,
                sop_uid=None,
                pixel_row=None,
                pixel_column=None,
                slice_index=None,
            )
        i, j, k = volume.to_index(centre)
        n_i, n_j, n_k = volume.hu.shape
        k_slice = min(max(round(k), 0), n_k - 1)
        return Finding(
            **base,
            centre_mm=centre,
            sop_uid=volume.sop_uids[k_slice],
            pixel_row=min(max(round(j), 0), n_j - 1),
            pixel_column=min(max(round(i), 0), n_i - 1),
            slice_index=k_slice,
        )
