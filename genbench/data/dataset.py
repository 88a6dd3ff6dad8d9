"""`ArrayDataset`: a whole split held as two tensors.

Training in genbench keeps the data on the device for the whole run and draws batches from a
device-side permutation, so a dataset is nothing more than its images and labels (plus what a
report needs to say about its size). Loaders return one; corruptions and preprocessing map it to
a new one and never change it in place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch

from genbench.errors import ConfigError

_FINGERPRINT_VERSION = b"genbench-content-v1\n"


class PartialDatasetWarning(UserWarning):
    """A split loaded with fewer images than its published size (e.g. CIFAR-10 test here).

    It is a warning, not an error, because the partial split is still useful; every result
    that uses it must report how many images it used (`ArrayDataset.size_note`).
    """


def content_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """sha256 hex of the decoded content: dtypes and shapes, then the x bytes, then the y bytes.

    Hashing the decoded arrays rather than files is what lets a re-encoded but identical file
    (the CIFAR-10 pickles here) pass, while any changed pixel, label or count fails.
    """
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    for name, tensor in (("x", x), ("y", y)):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
    for tensor in (x, y):  # raw bytes through a uint8 view: works for every dtype (bfloat16 too)
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """A whole split: images ``x`` (N, C, H, W) and labels ``y`` (N,) on one device.

    ``x`` is uint8 as loaded and floating point after preprocessing; ``y`` is int64 in
    ``[0, num_classes)``. ``partial`` marks a split whose source lacks part of the published
    split; ``nominal_size`` is the published size, so that reports can say "1,000 of 10,000
    images". Treat the tensors as read-only: the fingerprint is computed once and cached.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str
    partial: bool = False
    nominal_size: int | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.ndim != 4:
            raise ConfigError(f"ArrayDataset.x must be a 4-d NCHW tensor, got {_describe(self.x)}")
        if self.x.dtype != torch.uint8 and not self.x.dtype.is_floating_point:
            raise ConfigError(f"ArrayDataset.x must be uint8 or floating point, got {self.x.dtype}")
        if not isinstance(self.y, torch.Tensor) or self.y.dtype != torch.int64 or self.y.ndim != 1:
            raise ConfigError(f"ArrayDataset.y must be a 1-d int64 tensor, got {_describe(self.y)}")
        if len(self.y) != len(self.x):
            raise ConfigError(f"ArrayDataset.y has {len(self.y)} labels for {len(self.x)} images")
        if self.x.device != self.y.device:
            raise ConfigError(f"ArrayDataset.x is on {self.x.device} but y is on {self.y.device}")
        if self.num_classes < 1:
            raise ConfigError(f"ArrayDataset.num_classes must be >= 1, got {self.num_classes}")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= self.num_classes):
            raise ConfigError(f"ArrayDataset.y holds labels outside [0, {self.num_classes})")
        if self.nominal_size is not None and self.nominal_size < 1:
            raise ConfigError(f"ArrayDataset.nominal_size must be positive, got {self.nominal_size}")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        partial = ", partial" if self.partial else ""
        return (f"ArrayDataset({self.name!r}, {self.size_note()}, in_shape={self.in_shape}, "
                f"x={self.x.dtype}, num_classes={self.num_classes}, device={self.x.device}{partial})")

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image: what a model is built for."""
        channels, height, width = self.x.shape[1:]
        return (channels, height, width)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> ArrayDataset:
        """The same content on ``device`` (the cached fingerprint travels with it)."""
        moved = replace(self, x=self.x.to(device), y=self.y.to(device))
        if "_fingerprint" in self.__dict__:
            object.__setattr__(moved, "_fingerprint", self.__dict__["_fingerprint"])
        return moved

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> ArrayDataset:
        """The images at ``indices``, in that order; name, flags and nominal size are kept."""
        index = torch.as_tensor(np.asarray(indices) if not isinstance(indices, torch.Tensor)
                                else indices, dtype=torch.int64, device=self.x.device)
        return replace(self, x=self.x[index], y=self.y[index])

    def with_x(self, x: torch.Tensor) -> ArrayDataset:
        """The same labels with new images (preprocessed or corrupted)."""
        return replace(self, x=x)

    def with_labels(self, y: torch.Tensor) -> ArrayDataset:
        """The same images with new labels (e.g. randomized)."""
        return replace(self, y=y)

    def fingerprint(self) -> str:
        """sha256 hex of the decoded content (see :func:`content_fingerprint`), cached."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = content_fingerprint(self.x, self.y)
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def size_note(self) -> str:
        """How many images this is, against the published split: "1,000 of 10,000 images"."""
        if self.nominal_size is None:
            return f"{len(self):,} images"
        return f"{len(self):,} of {self.nominal_size:,} images"


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.ndim}-d {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__
