"""Where each dataset's files live under a data root, and how torchvision reads them.

The root uses torchvision's own layout, so a folder filled by ``download=True`` anywhere works.
Reading always goes through torchvision's dataset classes; the only things done here are the
two adaptations this workplace needs: MNIST-style roots that hold only ``raw/*.gz`` are
unpacked into a writable cache, and CIFAR-10's file md5 check is skipped because genbench checks
the decoded content instead (:mod:`genbench.data.integrity`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torchvision import datasets as tvd
from torchvision.datasets.utils import check_integrity

from genbench.errors import DatasetError

SPLITS = ("train", "test")
Reader = Callable[[Path, str], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Source:
    """One dataset: its published split sizes and the files torchvision reads for each split.

    ``files[split]`` pairs each path (relative to the root) with torchvision's md5 for it; the
    md5 is only a fallback for content genbench could not fingerprint here (see integrity).
    """

    name: str
    title: str
    num_classes: int
    sizes: dict[str, int]
    files: dict[str, tuple[tuple[str, str], ...]]
    reader: Reader
    tv_class: type

    def paths(self, root: Path, split: str) -> list[Path]:
        return [root / rel for rel, _ in self.files[split]]


def resolve_root(root: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The data root and where it came from: the argument, ``$GENBENCH_DATA``, or the default."""
    if root is not None:
        return Path(root).expanduser(), "the root argument"
    if os.environ.get("GENBENCH_DATA"):
        return Path(os.environ["GENBENCH_DATA"]).expanduser(), "$GENBENCH_DATA"
    return Path("~/.cache/genbench/data").expanduser(), "the default root (GENBENCH_DATA unset)"


def cache_dir() -> Path:
    """Writable cache for unpacked files: ``$GENBENCH_CACHE`` or ``~/.cache/genbench``."""
    return Path(os.environ.get("GENBENCH_CACHE") or "~/.cache/genbench").expanduser()


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}: genbench knows {', '.join(SOURCES)}. "
                           "Fix: use one of those names.") from None


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: use 'train' or 'test'.")


def missing_files(source: Source, root: Path, split: str) -> list[Path]:
    """The split's files that are absent (an unpacked IDX file also counts for its ``.gz``)."""
    return [path for path in source.paths(root, split)
            if not path.is_file() and not path.with_suffix("").is_file()]


def passes_torchvision_md5(source: Source, root: Path, split: str) -> bool:
    """Whether every file of the split has torchvision's published md5 (the original bytes)."""
    return all(check_integrity(str(path), md5)
               for path, (_, md5) in zip(source.paths(root, split), source.files[split]))


# --- readers: torchvision does the decoding -------------------------------------------------

def _read_idx(tv_class: type) -> Reader:
    def read(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = tv_class(str(_unpacked_root(root, tv_class.__name__)), train=split == "train",
                        download=False)
        return data.data.unsqueeze(1).contiguous(), data.targets.to(torch.int64)
    return read


class _CifarContentChecked(tvd.CIFAR10):
    """CIFAR-10 without the file md5 check: genbench checks the decoded content instead,
    because the files here are re-encoded (different bytes, identical arrays)."""

    def _check_integrity(self) -> bool:
        return True


def _read_cifar10(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    data = _CifarContentChecked(str(root), train=split == "train", download=False)
    x = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return x, torch.as_tensor(data.targets, dtype=torch.int64)


def _read_usps(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    data = tvd.USPS(str(root), train=split == "train", download=False)
    return torch.from_numpy(data.data).unsqueeze(1).contiguous(), torch.as_tensor(
        data.targets, dtype=torch.int64)


# --- MNIST-style roots with only .gz files ---------------------------------------------------

def _unpacked_root(root: Path, folder: str) -> Path:
    """A root where ``folder/raw`` holds the unpacked IDX files torchvision reads.

    If the root already has them, it is used as is. Otherwise the ``.gz`` files are unpacked
    into a cache folder keyed by their path, size and mtime, so a changed file is never shadowed
    by a stale copy and a read-only root (the shared datasets) still works.
    """
    raw = root / folder / "raw"
    gz_files = sorted(raw.glob("*.gz"))
    if not gz_files or all(path.with_suffix("").is_file() for path in gz_files):
        return root
    key = hashlib.sha256()
    for path in gz_files:
        stat = path.stat()
        key.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    cached = cache_dir() / "unpacked" / key.hexdigest()[:16]
    for path in gz_files:
        _gunzip(path, cached / folder / "raw" / path.with_suffix("").name)
    return cached


def _gunzip(src: Path, dst: Path) -> None:
    if dst.is_file():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dst.parent, delete=False) as tmp:
        try:
            with gzip.open(src, "rb") as packed:
                shutil.copyfileobj(packed, tmp)
        except (OSError, EOFError) as err:
            Path(tmp.name).unlink()
            raise DatasetError(
                f"{src} cannot be unpacked ({type(err).__name__}: {err}): the file is truncated or "
                f"corrupt. Fix: replace it (`genbench data fetch` where there is internet).") from err
    os.replace(tmp.name, dst)  # atomic: a crash never leaves a half-written file behind


def _idx_files(tv_class: type) -> dict[str, tuple[tuple[str, str], ...]]:
    folder = tv_class.__name__
    return {split: tuple((f"{folder}/raw/{name}", md5) for name, md5 in tv_class.resources
                          if name.startswith("train" if split == "train" else "t10k"))
             for split in SPLITS}


def _cifar_files() -> dict[str, tuple[tuple[str, str], ...]]:
    base, meta = tvd.CIFAR10.base_folder, tvd.CIFAR10.meta
    meta_file = (f"{base}/{meta['filename']}", meta["md5"])
    return {"train": tuple((f"{base}/{n}", md5) for n, md5 in tvd.CIFAR10.train_list) + (meta_file,),
            "test": tuple((f"{base}/{n}", md5) for n, md5 in tvd.CIFAR10.test_list) + (meta_file,)}


SOURCES: dict[str, Source] = {
    "mnist": Source("mnist", "MNIST", 10, {"train": 60_000, "test": 10_000},
                    _idx_files(tvd.MNIST), _read_idx(tvd.MNIST), tvd.MNIST),
    "fashion_mnist": Source("fashion_mnist", "Fashion-MNIST", 10, {"train": 60_000, "test": 10_000},
                            _idx_files(tvd.FashionMNIST), _read_idx(tvd.FashionMNIST),
                            tvd.FashionMNIST),
    "cifar10": Source("cifar10", "CIFAR-10", 10, {"train": 50_000, "test": 10_000},
                      _cifar_files(), _read_cifar10, tvd.CIFAR10),
    "usps": Source("usps", "USPS", 10, {"train": 7_291, "test": 2_007},
                   {split: ((tvd.USPS.split_list[split][1], tvd.USPS.split_list[split][2]),)
                    for split in SPLITS}, _read_usps, tvd.USPS),
}
