"""Fixed feature maps of Table 3: Gabor wavelets for MNIST, a random conv-net for CIFAR-10.

The paper names the preprocessing but not its parameters, so both maps are documented choices:

- :func:`gabor_features`: the modulus of a complex Gabor filter bank (wavelengths 3, 6, 12
  px x 8 orientations, one-octave bandwidth, support 2 sigma, zero-mean) applied by conv2d, then 4 x 4 average
  pooling: a first-order scattering-like transform. 28 x 28 MNIST -> 24 x 7 x 7 = 1,176 features.
- :class:`RandomConvNet`: footnote 4's "Coates & Ng net, but with the filters selected at random
  instead of with k-means": Coates, Lee & Ng (2011)'s single-layer pipeline. 6 x 6 patches at
  stride 1, each normalised by its own mean and sqrt(var + 10) (pixels on the 0-255 scale), ZCA
  whitening (eps 0.1) estimated from patches of the fitting images, K random unit-norm filters
  in the whitened space, the soft-threshold encoder max(0, f.x - 0.25), and sum pooling over the
  four quadrants: 4K features per image (K = 32,000 in the paper: 128,000 features). Work is
  chunked over images and filters, and :meth:`RandomConvNet.features` takes a filter range so a
  caller can accumulate a kernel over filter chunks without holding all 4K columns.
Features are returned unstandardized; the caller standardizes them on the training split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from genbench.errors import ConfigError


@dataclass(frozen=True)
class GaborBank:
    """Parameters of :func:`gabor_features` (wavelengths in pixels)."""

    wavelengths: tuple[float, ...] = (3.0, 6.0, 12.0)
    orientations: int = 8
    aspect: float = 0.5  # gamma: the envelope is narrower along the stripes
    pool: int = 4

    def __post_init__(self) -> None:
        if not self.wavelengths or min(self.wavelengths) <= 0:
            raise ConfigError(f"wavelengths: need positive values, got {self.wavelengths}")
        if self.orientations < 1 or self.pool < 1:
            raise ConfigError("orientations and pool: must be >= 1")

    def filters(self, dtype: torch.dtype = torch.float32) -> list[Tensor]:
        """Per wavelength, (2 * O, 1, k, k): real parts then imaginary parts, support 2 sigma."""
        bank = []
        for lam in self.wavelengths:
            sigma = 0.56 * lam  # one-octave bandwidth
            r = torch.arange(-math.ceil(2 * sigma), math.ceil(2 * sigma) + 1, dtype=torch.float64)
            yy, xx = torch.meshgrid(r, r, indexing="ij")
            real, imag = [], []
            for o in range(self.orientations):
                t = math.pi * o / self.orientations
                xr, yr = xx * math.cos(t) + yy * math.sin(t), -xx * math.sin(t) + yy * math.cos(t)
                env = torch.exp(-(xr**2 + (self.aspect * yr) ** 2) / (2 * sigma**2))
                re, im = env * torch.cos(2 * math.pi * xr / lam), env * torch.sin(2 * math.pi * xr / lam)
                re = re - env * (re.sum() / env.sum())  # remove the DC response
                norm = torch.sqrt((re**2 + im**2).sum())
                real.append(re / norm)
                imag.append(im / norm)
            bank.append(torch.stack(real + imag)[:, None].to(dtype))
        return bank


def gabor_features(x: Tensor, bank: GaborBank = GaborBank()) -> Tensor:
    """(N, 1, H, W) images -> (N, S * O * (H // pool) * (W // pool)) Gabor modulus features."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ConfigError(f"x: need grayscale NCHW images (N, 1, H, W), got {tuple(x.shape)}")
    x = x.float() if not x.is_floating_point() else x
    maps = []
    for w in bank.filters(x.dtype):
        out = F.conv2d(x, w.to(x.device), padding=w.shape[-1] // 2)
        half = out.shape[1] // 2
        maps.append(torch.sqrt(out[:, :half] ** 2 + out[:, half:] ** 2))
    return F.avg_pool2d(torch.cat(maps, dim=1), bank.pool).flatten(1)


def _sample_patches(x: Tensor, count: int, patch: int, generator: torch.Generator) -> Tensor:
    """(count, C*patch*patch) patches at uniformly random images and positions."""
    N, C, H, W = x.shape
    i = torch.randint(N, (count,), generator=generator)
    r = torch.randint(H - patch + 1, (count,), generator=generator)
    c = torch.randint(W - patch + 1, (count,), generator=generator)
    off = torch.arange(patch)
    rows = (r[:, None] + off)[:, None, :, None]
    cols = (c[:, None] + off)[:, None, None, :]
    chans = torch.arange(C)[None, :, None, None]
    dev = x.device
    return x[i[:, None, None, None].to(dev), chans.to(dev), rows.to(dev), cols.to(dev)].flatten(1)


@dataclass(frozen=True)
class RandomConvNet:
    """A fitted Coates-Ng single-layer net with random filters (see the module docstring)."""

    mean: Tensor  # (D,) mean of normalised patches
    whiten: Tensor  # (D, D) ZCA matrix
    filters: Tensor  # (K, D) unit-norm filters in the whitened space
    patch: int
    eps_norm: float
    threshold: float
    chunk_images: int
    chunk_filters: int

    @property
    def num_features(self) -> int:
        return 4 * self.filters.shape[0]

    def _whitened_patches(self, x: Tensor) -> tuple[Tensor, int, int]:
        """(B, L, D) normalised, whitened patches of every position, and the map's H', W'."""
        P = F.unfold(x, self.patch).transpose(1, 2)
        P = (P - P.mean(-1, keepdim=True)) / torch.sqrt(P.var(-1, keepdim=True) + self.eps_norm)
        h, w = x.shape[2] - self.patch + 1, x.shape[3] - self.patch + 1
        return (P - self.mean) @ self.whiten, h, w

    def features(self, x: Tensor, filters: slice = slice(None)) -> Tensor:
        """(N, C, H, W) images on the 0-255 scale -> (N, 4 * K') features for filters[filters]."""
        bank = self.filters[filters]
        x = x.to(device=bank.device, dtype=bank.dtype)
        out = torch.empty(x.shape[0], bank.shape[0], 4, dtype=bank.dtype, device=bank.device)
        for s in range(0, x.shape[0], self.chunk_images):
            P, h, w = self._whitened_patches(x[s : s + self.chunk_images])
            for f in range(0, bank.shape[0], self.chunk_filters):
                resp = (P @ bank[f : f + self.chunk_filters].T).sub_(self.threshold).relu_()
                maps = resp.view(P.shape[0], h, w, -1)
                quads = [q.sum(dim=(1, 2)) for r in maps.tensor_split(2, 1) for q in r.tensor_split(2, 2)]
                out[s : s + P.shape[0], f : f + self.chunk_filters] = torch.stack(quads, dim=2)
        return out.flatten(1)

    __call__ = features


def fit_random_conv(
    x: Tensor,
    num_filters: int,
    seed: int,
    patch: int = 6,
    num_patches: int = 100_000,
    eps_norm: float = 10.0,
    eps_zca: float = 0.1,
    threshold: float = 0.25,
    chunk_images: int = 256,
    chunk_filters: int = 256,
    dtype: torch.dtype = torch.float32,
) -> RandomConvNet:
    """Estimate whitening from ``num_patches`` patches of x and draw random filters (``seed``).

    Fit on the training images and apply the result to train and test alike.
    """
    if x.ndim != 4 or min(x.shape[2:]) < patch:
        raise ConfigError(f"x: need NCHW images at least {patch} x {patch}, got {tuple(x.shape)}")
    if num_filters < 1:
        raise ConfigError(f"num_filters: must be >= 1, got {num_filters}")
    g = torch.Generator().manual_seed(seed)
    x = x.to(dtype)
    P = _sample_patches(x, num_patches, patch, g).to(torch.float64)
    P = (P - P.mean(1, keepdim=True)) / torch.sqrt(P.var(1, keepdim=True) + eps_norm)
    mean = P.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov(P.T))
    whiten = evecs @ torch.diag(1.0 / torch.sqrt(evals.clamp(min=0) + eps_zca)) @ evecs.T
    filters = torch.randn(num_filters, P.shape[1], generator=g, dtype=torch.float64)
    filters = filters / filters.norm(dim=1, keepdim=True)
    to = dict(dtype=dtype, device=x.device)
    return RandomConvNet(
        mean=mean.to(**to),
        whiten=whiten.to(**to),
        filters=filters.to(**to),
        patch=patch,
        eps_norm=eps_norm,
        threshold=threshold,
        chunk_images=chunk_images,
        chunk_filters=chunk_filters,
    )


def random_conv_features(x: Tensor, num_filters: int, seed: int, **options) -> Tensor:
    """Fit :func:`fit_random_conv` on x and return x's (N, 4 * num_filters) features."""
    return fit_random_conv(x, num_filters, seed, **options).features(x)


__all__ = [
    "GaborBank",
    "RandomConvNet",
    "fit_random_conv",
    "gabor_features",
    "random_conv_features",
]
