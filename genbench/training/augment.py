"""Batch augmentation on device tensors.

The engine keeps the whole dataset on the device, so augmentation must also run there, on a
batch at a time, with every random draw taken from the run's own generator (so a run is
reproducible and resumable). Drawing (``draw``) is separate from applying (``apply``): under
torchrun every rank draws the parameters of the whole global batch, so the generators stay in
step across ranks, and applies those of its own shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genbench.training.config import Augment


@dataclass(frozen=True)
class Draws:
    """Per-image random parameters of one batch (None where the augmentation is off)."""

    oy: torch.Tensor | None = None
    ox: torch.Tensor | None = None
    flip: torch.Tensor | None = None
    angle: torch.Tensor | None = None

    def select(self, keep: torch.Tensor) -> "Draws":
        """The draws of the images selected by ``keep`` (a mask or an index)."""
        pick = lambda t: None if t is None else t[keep]  # noqa: E731
        return Draws(pick(self.oy), pick(self.ox), pick(self.flip), pick(self.angle))


def _uniform(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device)


def draw(aug: Augment, n: int, gen: torch.Generator, device: torch.device) -> Draws:
    """Random parameters for ``n`` images, in a fixed order: crop, flip, rotation."""
    oy = ox = flip = angle = None
    if aug.crop_padding:
        span = 2 * aug.crop_padding + 1
        oy = (_uniform(n, gen) * span).long().clamp_(max=span - 1).to(device)
        ox = (_uniform(n, gen) * span).long().clamp_(max=span - 1).to(device)
    if aug.hflip:
        flip = (_uniform(n, gen) < 0.5).to(device)
    if aug.rotate_degrees:
        angle = ((_uniform(n, gen) * 2 - 1) * math.radians(aug.rotate_degrees)).to(device)
    return Draws(oy, ox, flip, angle)


def crop(x: torch.Tensor, padding: int, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
    """Zero-pad each side by ``padding`` and cut the window at offsets (oy, ox) per image."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def hflip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the images where ``flip`` is True."""
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate each image by its angle in radians (bilinear, zero fill)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def apply(x: torch.Tensor, aug: Augment, d: Draws) -> torch.Tensor:
    """Apply drawn augmentations, in the order crop, flip, rotate."""
    if d.oy is not None:
        x = crop(x, aug.crop_padding, d.oy, d.ox)
    if d.flip is not None:
        x = hflip(x, d.flip)
    if d.angle is not None:
        x = rotate(x, d.angle)
    return x


def augment_batch(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """Draw and apply in one call (one process, whole batch)."""
    return apply(x, aug, draw(aug, x.shape[0], gen, x.device))
