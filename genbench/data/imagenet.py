"""ImageNet (or any ImageFolder tree) as a streamed dataset.

ImageNet's 1.28M training images cannot be resident on a device, so, unlike every other
genbench dataset, it is streamed: DataLoader workers decode and resize JPEGs to uint8 tensors
(on the CPU, in parallel), and the engine moves each batch to the device, where it is scaled
and augmented. Random labels are drawn once from a seed over the whole split, so they are
identical on every rank and in every epoch, as Zhang et al. require.

The standard layout is torchvision's: ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/<wnid>/*``
(``ImageFolder``); the root comes from the argument or ``$GENBENCH_IMAGENET``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.transforms import v2

from genbench.errors import DatasetError

INCEPTION_SIZE = 299


def imagenet_root(root: str | os.PathLike[str] | None = None) -> Path | None:
    """The ImageNet root from the argument or $GENBENCH_IMAGENET (None when neither is set)."""
    value = root if root is not None else os.environ.get("GENBENCH_IMAGENET")
    return Path(value) if value else None


class _Indexed(Dataset):
    """An ImageFolder returning (uint8 CHW image of a fixed size, index): the label is looked
    up by index on the device, which is what lets random labels stay fixed."""

    def __init__(self, folder: datasets.ImageFolder, image_size: int) -> None:
        self.folder = folder
        self.transform = v2.Compose([v2.ToImage(), v2.Resize(image_size, antialias=True),
                                     v2.CenterCrop(image_size)])

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, _ = self.folder[index]
        return self.transform(image), index


def _regular_image(path: str) -> bool:
    """An image file by extension that is a regular file: a FIFO or device named like an image
    would block a loader worker forever, so it is left out like any other non-image."""
    return (datasets.folder.has_file_allowed_extension(path, datasets.folder.IMG_EXTENSIONS)
            and os.path.isfile(path))


def inception_scaling(x: torch.Tensor) -> torch.Tensor:
    """Inception V3's input range: uint8 [0, 255] to float [-1, 1] (on the device)."""
    return x.to(torch.float32) / 127.5 - 1.0


@dataclass(frozen=True, eq=False)
class StreamedDataset:
    """A split that the engine streams rather than holds: ``fit`` accepts it like an
    ArrayDataset. ``targets`` are the labels used for training (true or random, (N,))."""

    folder: datasets.ImageFolder
    name: str
    image_size: int = INCEPTION_SIZE
    workers: int = 8
    targets: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    @property
    def num_classes(self) -> int:
        return len(self.folder.classes)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    def __len__(self) -> int:
        return len(self.folder)

    def stream_dataset(self) -> Dataset:
        return _Indexed(self.folder, self.image_size)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        return inception_scaling(x)

    def size_note(self) -> str:
        return f"{len(self):,} images"


def load_imagenet(split: str = "train", root: str | os.PathLike[str] | None = None, *,
                  image_size: int = INCEPTION_SIZE, random_labels_seed: int | None = None,
                  workers: int = 8) -> StreamedDataset:
    """The ``split`` ("train" or "val") of the ImageFolder tree at ``root``, streamed.

    ``random_labels_seed``: replace every label by a uniform draw over the classes, drawn once
    from this seed (Zhang's random labels; same on every rank and epoch)."""
    base = imagenet_root(root)
    fix = ("Fix: pass root= or set GENBENCH_IMAGENET to a folder holding train/<class>/ and "
           "val/<class>/ image folders (torchvision ImageFolder layout); ImageNet itself must "
           "be obtained from image-net.org under its terms.")
    if base is None:
        raise DatasetError(f"ImageNet: no root given and GENBENCH_IMAGENET is not set. {fix}")
    path = base / split
    if not path.is_dir():
        raise DatasetError(f"ImageNet {split}: no folder at {path}. {fix}")
    try:
        folder = datasets.ImageFolder(str(path), is_valid_file=_regular_image)
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(f"ImageNet {split}: {path} holds no readable class folders ({err}). "
                           f"{fix}") from err
    targets = torch.as_tensor(folder.targets, dtype=torch.long)
    if random_labels_seed is not None:
        gen = torch.Generator().manual_seed(random_labels_seed)
        targets = torch.randint(0, len(folder.classes), (len(targets),), generator=gen)
    return StreamedDataset(folder, f"imagenet-{split}", image_size, workers, targets)
