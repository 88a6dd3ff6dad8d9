"""The corruptions of Zhang et al. (2017) and the extreme-overfitting construction.

Pure functions: each takes a dataset and an explicit seed and returns a new dataset. Random draws
are made on the CPU with a ``torch.Generator`` (identical numbers on every machine), then moved to
the dataset's device.
"""

from __future__ import annotations

import torch

from genbench.data.dataset import ArrayDataset
from genbench.errors import ConfigError

_PERMUTATION_CHUNK = 4096  # images per chunk of per-image permutations; bounds the memory


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_labels(ds: ArrayDataset, p: float, seed: int) -> ArrayDataset:
    """Each label independently, with probability ``p``, replaced by a uniform draw over all k
    classes (so it may land on the true label: the changed fraction is ``p (k-1) / k``)."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"random_labels: p must be in [0, 1], got {p}")
    gen = _generator(seed)
    replace = torch.rand(len(ds), generator=gen) < p
    drawn = torch.randint(0, ds.num_classes, (len(ds),), generator=gen)
    y = torch.where(replace.to(ds.y.device), drawn.to(ds.y.device), ds.y)
    return ds.with_labels(y)


def wrong_labels(ds: ArrayDataset, seed: int) -> ArrayDataset:
    """Every label replaced by a label drawn uniformly from the other k-1 classes."""
    if ds.num_classes < 2:
        raise ConfigError(f"wrong_labels: needs num_classes >= 2, got {ds.num_classes}")
    offset = torch.randint(1, ds.num_classes, (len(ds),), generator=_generator(seed))
    return ds.with_labels((ds.y + offset.to(ds.y.device)) % ds.num_classes)


def shuffled_pixels(ds: ArrayDataset, seed: int) -> ArrayDataset:
    """One permutation of the pixel positions, applied to every image.

    The permutation depends only on ``seed`` and the image size, so calling this on the train
    and the test set with the same seed shuffles both the same way, as Zhang et al. require.
    A pixel keeps its channels together (positions are permuted, not channel values).
    """
    _, channels, height, width = ds.x.shape
    perm = torch.randperm(height * width, generator=_generator(seed)).to(ds.x.device)
    return ds.with_x(ds.x.flatten(2)[:, :, perm].reshape(ds.x.shape))


def random_pixels(ds: ArrayDataset, seed: int) -> ArrayDataset:
    """An independent permutation of the pixel positions for each image."""
    n, channels, height, width = ds.x.shape
    gen = _generator(seed)
    flat = ds.x.flatten(2)
    chunks = []
    for start in range(0, n, _PERMUTATION_CHUNK):
        rows = min(_PERMUTATION_CHUNK, n - start)
        perm = torch.rand(rows, height * width, generator=gen).argsort(dim=1).to(ds.x.device)
        index = perm.unsqueeze(1).expand(rows, channels, height * width)
        chunks.append(flat[start:start + rows].gather(2, index))
    return ds.with_x(torch.cat(chunks).reshape(ds.x.shape) if chunks else ds.x.clone())


def gaussian_pixels(ds: ArrayDataset, seed: int) -> ArrayDataset:
    """Every pixel drawn from a Gaussian with the dataset's mean and variance (over all pixels).

    The result is float32 in the units of ``x`` (0..255 for uint8 input), neither rounded nor
    clipped, so the usual preprocessing applies unchanged.
    """
    stats = ds.x.to(torch.float64)
    mean, std = stats.mean(), stats.std(correction=0)
    noise = torch.randn(ds.x.shape, generator=_generator(seed), dtype=torch.float32)
    x = noise.to(ds.x.device) * std.to(torch.float32) + mean.to(torch.float32)
    return ds.with_x(x)


def extreme_overfitting_set(train: ArrayDataset, test: ArrayDataset, seed: int) -> ArrayDataset:
    """Algorithm 1 of the extreme-overfitting paper: the train set plus a corrupted test set.

    Every test label is replaced by a uniformly drawn wrong label; that corrupted test set is
    repeated ``t = floor(n_train / n_test) + 1`` times (so it outweighs the train set) and
    appended to the train set.
    """
    if train.num_classes != test.num_classes or train.in_shape != test.in_shape:
        raise ConfigError("extreme_overfitting_set: train and test must share num_classes and "
                          f"in_shape, got {train.num_classes}/{train.in_shape} and "
                          f"{test.num_classes}/{test.in_shape}")
    if train.x.dtype != test.x.dtype or train.x.device != test.x.device:
        raise ConfigError("extreme_overfitting_set: train.x and test.x must share dtype and device")
    if len(test) == 0:
        raise ConfigError("extreme_overfitting_set: test must not be empty")
    corrupted = wrong_labels(test, seed)
    repeats = len(train) // len(test) + 1
    x = torch.cat([train.x, test.x.repeat(repeats, 1, 1, 1)])
    y = torch.cat([train.y, corrupted.y.repeat(repeats)])
    return ArrayDataset(x, y, train.num_classes, f"{train.name}+extreme({test.name})")
