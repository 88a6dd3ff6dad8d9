"""Batch augmentation on device tensors.

The engine keeps the whole dataset on the device, so augmentation must also run there, on a
batch at a time, with every random draw taken from the run's own generator (so a run is
reproducible and resumable).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genbench.training.config import Augment


def _uniform(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device).to(device)


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad each side by ``padding`` and cut a random window of the original size."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    span = 2 * padding + 1
    oy = (_uniform(b, gen, x.device) * span).long().clamp_(max=span - 1)
    ox = (_uniform(b, gen, x.device) * span).long().clamp_(max=span - 1)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = _uniform(x.shape[0], gen, x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_rotate(x: torch.Tensor, degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle uniform in [-degrees, degrees] (bilinear, zero fill)."""
    angle = (_uniform(x.shape[0], gen, x.device) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_batch(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """Apply the configured augmentations, in the order crop, flip, rotate."""
    if aug.crop_padding:
        x = random_crop(x, aug.crop_padding, gen)
    if aug.hflip:
        x = random_hflip(x, gen)
    if aug.rotate_degrees:
        x = random_rotate(x, aug.rotate_degrees, gen)
    return x
