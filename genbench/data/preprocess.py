"""Preprocessing as each paper states it, on whatever device the images are on.

All functions take a uint8 or float image tensor (N, C, H, W) and return a new float32 tensor on
the same device, so data that lives on the GPU for the whole run is preprocessed there.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision.transforms.v2 import functional as tvf

from genbench.errors import ConfigError

ZHANG_CROP = 28


def unit(x: torch.Tensor) -> torch.Tensor:
    """Pixels scaled to [0, 1]: float32 ``x / 255``."""
    return x.to(torch.float32) / 255.0


def zhang(x: torch.Tensor) -> torch.Tensor:
    """Zhang et al. (2017), Appendix A: /255, center-crop 28x28, per-image standardization.

    The standardization is TensorFlow's ``per_image_standardization``: subtract the image's mean
    and divide by ``max(std, 1/sqrt(num_elements))`` with the population std over all pixels and
    channels of the image; the floor keeps a constant image finite.
    """
    if min(x.shape[-2:]) < ZHANG_CROP:
        raise ConfigError(f"zhang: x must be at least {ZHANG_CROP}x{ZHANG_CROP} to crop, "
                          f"got {tuple(x.shape[-2:])}")
    cropped = tvf.center_crop(unit(x), [ZHANG_CROP, ZHANG_CROP])
    return per_image_standardization(cropped)


def per_image_standardization(x: torch.Tensor) -> torch.Tensor:
    """Each image to zero mean and unit variance (TensorFlow's definition, see :func:`zhang`)."""
    flat = x.to(torch.float32).flatten(1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, correction=0, keepdim=True)
    floor = torch.tensor(flat.shape[1], dtype=torch.float32, device=x.device).rsqrt()
    return ((flat - mean) / torch.maximum(std, floor)).reshape(x.shape)


def standardize(x: torch.Tensor, mean: Sequence[float] | torch.Tensor,
                std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Per-channel ``(x - mean[c]) / std[c]`` for float images (call :func:`unit` first)."""
    if not x.dtype.is_floating_point:
        raise ConfigError(f"standardize: x must be floating point (apply unit() first), got {x.dtype}")
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
    channels = x.shape[1]
    if mean_t.numel() != channels or std_t.numel() != channels:
        raise ConfigError(f"standardize: mean and std need {channels} values (one per channel), "
                          f"got {mean_t.numel()} and {std_t.numel()}")
    if bool((std_t <= 0).any()):
        raise ConfigError("standardize: std must be positive in every channel")
    return (x.to(torch.float32) - mean_t) / std_t


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std of a training set, in the units of ``x``.

    Computed in float64 so that 50,000 CIFAR-10 images give the well-known values exactly.
    """
    per_channel = x.transpose(0, 1).flatten(1).to(torch.float64)
    return (per_channel.mean(dim=1).to(torch.float32),
            per_channel.std(dim=1, correction=0).to(torch.float32))
