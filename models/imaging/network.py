"""The network: a small MONAI 3D UNet that outputs a nodule heatmap (one logit per voxel).

Why a heatmap UNet rather than a classifier (DenseNet/ResNet) with a location head: the task
needs both "is there a nodule" and "where", and a fully convolutional net answers both from one
output (probability from the peak logit, location from the peak's voxel) while staying valid
under sliding-window inference on a volume of any size; a global classifier head would need
the whole volume at a fixed size and a regression head learns location far less sample-
efficiently than a per-voxel target. The UNet is small (three levels of 8/16/32 channels, one
residual unit each, ~34 k parameters): the synthetic nodules are compact, bright blobs in dark
lung, and a small net trains in minutes on CPU. Batch norm rather than MONAI's default
instance norm: the net trains on small patches and serves whole volumes, and instance norm's
per-input statistics would differ between the two (batch norm's running statistics do not); it
also keeps absolute intensity, which is what tells a nodule (soft tissue) from lung.
"""

from __future__ import annotations

import torch
from monai.networks.nets.unet import UNet

from models.imaging.config import ImagingConfig


def build_network(config: ImagingConfig) -> torch.nn.Module:
    return UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=1,
        channels=config.channels,
        strides=config.strides,
        num_res_units=1,
        norm="batch",
    )
