"""The imaging model's hyper-parameters, saved in the model card so serving preprocesses alike.

Defaults are sized for CPU: the cohort's CT is 96 x 96 x 32 voxels of 3.5 x 3.5 x 7.5 mm, kept
at that spacing (a 5 mm nodule is under two pixels wide; coarser resampling loses it). Training
runs on 32 x 32 x 16 patches, half of them on the nodule when there is one, so a step is cheap
and the rare positive voxels are seen often; inference slides a window of the same size over
the whole volume, so the net always sees inputs shaped as in training (zero padding at a patch's
edge is part of what it learnt).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ImagingConfig:
    # (column, row, slice) mm after resampling
    spacing_mm: tuple[float, float, float] = (3.5, 3.5, 7.5)
    window_hu: tuple[float, float] = (-1000.0, 400.0)  # lung + soft tissue, scaled to 0..1
    input_size: tuple[int, int, int] = (96, 96, 32)  # training volumes are padded/cropped to it
    patch_size: tuple[int, int, int] = (32, 32, 16)  # training patches (divisible by 4)
    samples_per_volume: int = 4
    pos_fraction: float = 0.5  # share of patches centred on the nodule, when there is one
    roi_size: tuple[int, int, int] = (32, 32, 16)  # sliding window: the training patch size
    channels: tuple[int, ...] = (8, 16, 32)
    strides: tuple[int, ...] = (2, 2)
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-2
    heatmap_sigma_mm: float = 5.0
    voxel_pos_weight: float = 50.0  # the nodule is a few voxels among thousands in a patch
    peak_loss_weight: float = 0.0  # BCE of the patch's peak logit vs "holds a nodule"
    threshold: float = 0.5  # calibrated probability at and above which a nodule is "present"
    seed: int = 7
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ImagingConfig:
        tuples = {
            "spacing_mm",
            "window_hu",
            "input_size",
            "patch_size",
            "roi_size",
            "channels",
            "strides",
        }
        known = set(cls.__dataclass_fields__)
        values: dict[str, Any] = {
            k: (tuple(v) if k in tuples else v) for k, v in raw.items() if k in known
        }
        return cls(**values)


TINY = ImagingConfig(
    spacing_mm=(5.25, 5.25, 7.5),
    input_size=(64, 64, 32),
    patch_size=(16, 16, 8),
    samples_per_volume=16,
    roi_size=(16, 16, 8),
    channels=(8, 16),
    strides=(2,),
    epochs=15,
    heatmap_sigma_mm=6.0,
)
"""For tests: 64 x 64 x 32 voxels of 5.25 mm, 16 x 16 x 8 patches, a two-level UNet; trains in
a minute or two on one core and sees nodules of ~8 mm and more."""
