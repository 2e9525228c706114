"""`cdss train imaging`: train the nodule UNet on the cohort, calibrate, evaluate, register.

Deterministic for a seed: torch's generator, a seeded shuffle, deterministic algorithms and no
augmentation randomness outside that generator, so two runs with the same seed and thread count
give equal weights (tested). Loss per volume = voxel-wise BCE against the Gaussian heatmap
(positive voxels up-weighted) + BCE of the peak logit against "nodule present" (classes balanced):
the first teaches where, the second makes the peak a score whose ranking is the AUROC we report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from monai.transforms.croppad.array import RandCropByPosNegLabel
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from models.imaging import data
from models.imaging.config import ImagingConfig
from models.imaging.evaluate import Scored, evaluate
from models.imaging.infer import MODEL_NAME, WEIGHTS_FILE, Predictor, weights_bytes
from models.imaging.network import build_network
from models.imaging.transforms import heatmap_target, preprocess
from models.registry import ModelRegistry, ModelVersion

log = logging.getLogger(__name__)

INTENDED_USE = (
    "Research and demonstration only: flags a possible pulmonary nodule on a non-contrast chest "
    "CT and points at its centre, as a second reader's prompt. Not a diagnosis; not for clinical "
    "use. Trained and evaluated only on the project's synthetic cohort (stylised chest phantoms, "
    "3.5 x 3.5 x 7.5 mm voxels, solid nodules): it has never seen real anatomy, and nodules under "
    "~6 mm are near the resolution it works at."
)


@dataclass(frozen=True, slots=True)
class Trained:
    network: torch.nn.Module
    config: ImagingConfig
    calibration: tuple[float, float]
    metrics: dict[str, object]
    external: dict[str, object] | None  # metrics on an independent cohort, when one was given
    fingerprint: str
    counts: dict[str, int]
    seconds: float


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=False)


def _centres(target: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """Where a positive patch may be centred: anywhere that keeps the nodule's centre inside it
    (a box of half the patch around the peak), not only on the nodule. Centring every positive
    patch on its nodule lets the net learn "bright blob at the patch centre", which fails when
    the nodule sits anywhere else in a sliding window."""
    mask = torch.zeros_like(target, dtype=torch.uint8)
    if float(target.max()) <= 0.5:
        return mask
    peak = [int(v) for v in torch.nonzero(target[0] == target[0].max())[0]]
    box = [
        slice(max(c - (p // 2 - 1), 0), c + (p // 2 - 1) + 1)
        for c, p in zip(peak, patch, strict=True)
    ]
    mask[0, box[0], box[1], box[2]] = 1
    return mask


def _patches(
    images: Sequence[torch.Tensor], heat: Sequence[torch.Tensor], config: ImagingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's training patches: RandCropByPosNegLabel puts the nodule in `pos_fraction` of
    them (at a random place, see _centres) and centres the rest anywhere else, so the net sees
    the rare nodule often and every kind of background (wall, spine, air, lung texture)."""
    cropper = RandCropByPosNegLabel(
        spatial_size=config.patch_size,
        pos=config.pos_fraction,
        neg=1.0 - config.pos_fraction,
        num_samples=config.samples_per_volume,
        allow_smaller=False,
    )
    cropper.set_random_state(int(torch.randint(0, 2**31 - 1, (1,))))
    xs, hs = [], []
    for image, target in zip(images, heat, strict=True):
        stacked = torch.cat([image, target])  # crop image and target together
        label = _centres(target, config.patch_size)
        for patch in cropper(stacked, label=label):
            plain = torch.as_tensor(patch).as_subclass(torch.Tensor)
            xs.append(plain[:1])
            hs.append(plain[1:])
    return torch.stack(xs), torch.stack(hs)


def fit(
    studies: Sequence[data.Study],
    config: ImagingConfig,
    *,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
) -> torch.nn.Module:
    """Train a fresh network on patches of `studies`; `progress(epoch, mean loss)`."""
    _seed(config.seed)
    dev = torch.device(device)
    images = [preprocess(s.volume, config, fixed_size=True) for s in studies]
    heat = [
        heatmap_target(img, s.centre_mm, config.heatmap_sigma_mm)
        for img, s in zip(images, studies, strict=True)
    ]
    network = build_network(config).to(dev)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    voxel_loss = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(config.voxel_pos_weight, device=dev)
    )
    network.train()
    for epoch in range(config.epochs):
        x, h = _patches(images, heat, config)
        y = (h.flatten(1).amax(dim=1) > 0.5).float()  # the patch holds the nodule's centre
        n_pos = max(float(y.sum()), 1.0)
        peak_loss = torch.nn.BCEWithLogitsLoss(
            pos_weight=torch.tensor(max(len(y) - n_pos, 1.0) / n_pos, device=dev)
        )
        order = torch.randperm(len(y))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            xb, hb, yb = x[idx].to(dev), h[idx].to(dev), y[idx].to(dev)
            optimiser.zero_grad()
            logits = network(xb)
            loss = voxel_loss(logits, hb)
            if config.peak_loss_weight:
                peaks = logits.flatten(1).amax(dim=1)
                loss = loss + config.peak_loss_weight * peak_loss(peaks, yb)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        if progress is not None:
            progress(epoch + 1, total / len(y))
    network.eval()
    return network.cpu()


def calibrate(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """Platt scaling (Platt 1999) of the peak logit on the calibration split."""
    if len(set(labels)) < 2:
        return (1.0, 0.0)
    model = LogisticRegression(C=1e4).fit(np.array(scores)[:, None], np.array(labels))
    return (float(model.coef_[0, 0]), float(model.intercept_[0]))


def score(predictor: Predictor, studies: Sequence[data.Study]) -> list[Scored]:
    """Probability per study, and the distance from the heatmap's peak to the true centre for
    every study with a nodule (the peak is where the model points, whatever its probability)."""
    out = []
    for s in studies:
        raw, centre = predictor.peak(s.volume)
        error = None
        if s.centre_mm is not None:
            error = float(np.linalg.norm(np.array(centre) - np.array(s.centre_mm)))
        out.append(Scored(s.label, predictor.probability(raw), error))
    return out


def raw_scores(predictor: Predictor, studies: Sequence[data.Study]) -> list[float]:
    return [predictor.peak(s.volume)[0] for s in studies]


def train(
    studies: Sequence[data.Study],
    config: ImagingConfig,
    *,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
    external: Sequence[data.Study] = (),
) -> Trained:
    """Split, fit, calibrate, evaluate on the held-out test split and, when given, on
    `external` studies of another cohort. Why both: the split's test set is a fifth of the
    training cohort (~40 studies, ~8 nodules at the defaults), so its CIs are wide and one
    lucky draw shows; an independent cohort of a few hundred studies is the figure to trust."""
    started = time.monotonic()
    train_set, cal_set, test_set = data.split(list(studies))
    if not train_set or not test_set or len({s.label for s in train_set}) < 2:
        raise ValueError(
            f"too few studies to train ({len(studies)}; both classes needed in training)"
        )
    network = fit(train_set, config, device=device, progress=progress)
    uncalibrated = Predictor(network, config, (1.0, 0.0), model=f"{MODEL_NAME}@new")
    calibration = calibrate(raw_scores(uncalibrated, cal_set), [s.label for s in cal_set])
    predictor = Predictor(network, config, calibration, model=f"{MODEL_NAME}@new")
    metrics = evaluate(score(predictor, test_set), threshold=config.threshold, seed=config.seed)
    independent = (
        evaluate(score(predictor, external), threshold=config.threshold, seed=config.seed)
        if external
        else None
    )
    return Trained(
        network=network,
        config=config,
        calibration=calibration,
        metrics=metrics,
        external=independent,
        fingerprint=data.fingerprint(list(studies)),
        counts={"train": len(train_set), "calibration": len(cal_set), "test": len(test_set)},
        seconds=time.monotonic() - started,
    )


def card(
    trained: Trained, cohort: dict[str, Any], external: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The model card (registry adds name, version, created, files). `external` describes the
    independent evaluation cohort (source, seed, studies) when there was one."""
    metrics: dict[str, Any] = {"test": trained.metrics}
    if trained.external is not None:
        metrics["external"] = {**(external or {}), **trained.external}
    return {
        "task": "Pulmonary nodule present/absent and its centre on chest CT (3D heatmap UNet)",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": "MONAI UNet 3D, heatmap output; probability = Platt(peak logit)",
        "inputs": {
            "modality": "CT (CT Image Storage, single-frame axial series)",
            "spacing_mm": trained.config.spacing_mm,
            "window_hu": trained.config.window_hu,
        },
        "outputs": {
            "probability": "calibrated probability of a nodule (0..1)",
            "location": "nodule centre, patient LPS mm, and slice/pixel",
        },
        "config": trained.config.as_json(),
        "calibration": {
            "method": "platt",
            "a": trained.calibration[0],
            "b": trained.calibration[1],
        },
        "training_data": {
            "source": "synthetic cohort (simulators/cohort), same DICOM as seeded into Orthanc",
            **cohort,
            "fingerprint_sha256": trained.fingerprint,
            "split": trained.counts,
        },
        "metrics": metrics,
        "training_seconds": round(trained.seconds, 1),
        "intended_use": INTENDED_USE,
        "limitations": [
            "synthetic phantoms only; no real CT, no vendor/kernel variation",
            "one finding per study (the strongest); multiple nodules are not enumerated",
            "ground-glass and part-solid nodules are not in the training data",
        ],
        "references": [
            "Ronneberger et al., U-Net, MICCAI 2015 (3D variant via MONAI)",
            "Platt, Probabilistic outputs for SVMs, 1999 (calibration)",
            "DICOM PS3.16 TID 1500 Measurement Report (SR output)",
        ],
    }


def save(
    registry: ModelRegistry,
    trained: Trained,
    cohort: dict[str, Any],
    external: dict[str, Any] | None = None,
) -> ModelVersion:
    return registry.save(
        MODEL_NAME,
        {WEIGHTS_FILE: weights_bytes(trained.network)},
        card(trained, cohort, external),
    )
