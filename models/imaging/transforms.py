"""MONAI preprocessing shared by training and serving (one function, so they cannot drift).

Resample to the model's spacing (Spacing, from the volume's DICOM-derived affine; a Gaussian
of (step ratio - 1) / 2 voxels first, when coarsening, so a small nodule is blurred rather than
skipped between samples), window the
Hounsfield units to lung + soft tissue and scale them to 0..1 (ScaleIntensityRange, clipped),
then crop/pad: to a fixed size for training batches (ResizeWithPadOrCrop), or only to a size the
UNet's strides divide for sliding-window inference (DivisiblePad). MONAI carries the affine
through every step, so a voxel of the output maps back to patient millimetres.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from monai.data.meta_tensor import MetaTensor
from monai.transforms.croppad.array import DivisiblePad, ResizeWithPadOrCrop
from monai.transforms.intensity.array import GaussianSmooth, ScaleIntensityRange
from monai.transforms.spatial.array import Spacing

from models.imaging.config import ImagingConfig
from models.imaging.volume import Volume


def preprocess(volume: Volume, config: ImagingConfig, *, fixed_size: bool) -> MetaTensor:
    """(1, I, J, K) float32 MetaTensor in 0..1 with its index -> LPS mm affine."""
    image: Any = MetaTensor(
        torch.from_numpy(volume.hu[None].astype(np.float32)),
        affine=torch.from_numpy(volume.affine),
    )
    sigma = [
        max(0.0, (new / old - 1.0) / 2.0)
        for new, old in zip(config.spacing_mm, volume.spacing, strict=True)
    ]
    if any(sigma):  # anti-aliasing: point sampling would skip a nodule smaller than the step
        image = GaussianSmooth(sigma=sigma)(image)
    image = Spacing(pixdim=config.spacing_mm, mode="bilinear", padding_mode="border")(image)
    low, high = config.window_hu
    image = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)(image)
    if fixed_size:
        image = ResizeWithPadOrCrop(config.input_size)(image)
    else:
        image = DivisiblePad(k=math.prod(config.strides))(image)
    assert isinstance(image, MetaTensor)
    return image


def heatmap_target(
    image: MetaTensor, centre_mm: tuple[float, float, float] | None, sigma_mm: float
) -> torch.Tensor:
    """The training target: a Gaussian of `sigma_mm` at the nodule centre, zeros when none."""
    shape = image.shape[1:]
    if centre_mm is None:
        return torch.zeros((1, *shape), dtype=torch.float32)
    affine = image.affine.numpy()
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    index = np.stack([g.ravel() for g in grids] + [np.ones(grids[0].size)])
    mm = (affine @ index)[:3]
    d2 = ((mm - np.array(centre_mm)[:, None]) ** 2).sum(axis=0)
    target = np.exp(-d2 / (2 * sigma_mm**2)).reshape(shape).astype(np.float32)
    return torch.from_numpy(target)[None]
