"""Preprocessing a CT acquired finer than the model works at: the nodule survives the
coarsening, stays where it is in patient millimetres, and a full-size CT is not slow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.imaging.config import ImagingConfig
from models.imaging.transforms import preprocess
from models.imaging.volume import Volume

CONFIG = ImagingConfig()  # 3.5 x 3.5 x 7.5 mm


def _fine_volume(centre_mm: tuple[float, float, float], radius_mm: float) -> Volume:
    """0.7 x 0.7 x 2.5 mm lung (-800 HU) with a solid sphere (+40 HU) at `centre_mm`; origin
    off the grid of the model's spacing on purpose."""
    spacing, shape, origin = (0.7, 0.7, 2.5), (200, 180, 60), (-71.3, -60.9, 12.4)
    axes = [np.arange(n) * s + o for n, s, o in zip(shape, spacing, origin, strict=True)]
    grids = np.meshgrid(*axes, indexing="ij")
    d2 = sum((g - c) ** 2 for g, c in zip(grids, centre_mm, strict=True))
    hu = np.where(d2 <= radius_mm**2, 40.0, -800.0).astype(np.float32)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return Volume(hu, affine, "1.2.3", "1.2.3.4", tuple(f"1.2.3.4.{k}" for k in range(shape[2])))


@pytest.mark.parametrize("radius_mm", [3.0, 6.0])
def test_a_nodule_stays_where_it_is_and_is_not_skipped(radius_mm: float) -> None:
    centre = (-20.45, 13.1, 77.3)
    image = preprocess(_fine_volume(centre, radius_mm), CONFIG, fixed_size=False)
    spacing = np.linalg.norm(image.affine.numpy()[:3, :3], axis=0)
    assert np.allclose(spacing, CONFIG.spacing_mm)
    data = image[0].numpy()
    peak = np.unravel_index(int(np.argmax(data)), data.shape)
    mm = image.affine.numpy() @ np.array([*peak, 1.0])
    assert np.all(np.abs(mm[:3] - np.array(centre)) <= np.array(CONFIG.spacing_mm)), mm[:3]
    background = (-800 + 1000) / 1400  # -800 HU after the -1000..400 window
    assert data.max() > background + 0.02, data.max()  # averaged in, not sampled past


def test_a_full_size_ct_is_coarsened_by_averaging_in_one_pass() -> None:
    """512 x 512 x 300 at 0.7 x 0.7 x 2.5 mm: what a real chest CT brings. Checks the shape and
    that every voxel counted (the mean HU is kept); the timing is bench/ai_models.py's."""
    rng = np.random.default_rng(0)
    hu = rng.normal(-500, 300, size=(512, 512, 300)).astype(np.float32)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    volume = Volume(hu, affine, "1", "1.1", tuple(str(k) for k in range(300)))
    image = preprocess(volume, ImagingConfig(window_hu=(-5000.0, 5000.0)), fixed_size=False)
    assert tuple(image.shape[1:4]) == (104, 104, 100)  # 102 x 102 x 100, padded to /4
    restored = image[0].numpy() * 10_000 - 5_000
    inner = restored[restored > -4_999]  # DivisiblePad's zeros are -5000 HU here
    assert inner.size == 102 * 102 * 100
    assert abs(float(inner.mean()) - float(hu.mean())) < 1.0
    assert float(inner.std()) < 300 / 5  # averaged over ~75 voxels each, not sampled
    assert isinstance(image.as_tensor(), torch.Tensor)
