"""Where each dataset's files live under a data root, and how torchvision reads them.

The root uses torchvision's own layout, so a folder filled by ``download=True`` anywhere works.
Data roots come from mirrors and colleagues, so reading treats every file as hostile: CIFAR-10's
pickles go through a restricted unpickler (no code runs from a data file), MNIST-style IDX
files are parsed strictly (from ``raw/*.gz`` in memory, so there is no unpack cache to go
stale), only the requested split's own regular files are opened (a FIFO cannot hang a load),
and each failure names its file and its cause (permission, not plain data, truncated).
USPS's text format is decoded by torchvision. Content is then checked against recorded
fingerprints (:mod:`genbench.data.integrity`), never against file md5s alone.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
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
    """The split's files that are absent (an unpacked IDX file also counts for its ``.gz``).

    Something that exists but is not a regular file (a FIFO, a folder) counts as present: the
    reader then names it. A folder this user may not enter raises a DatasetError saying so,
    rather than calling the files missing.
    """
    return [path for path in source.paths(root, split)
            if not _exists(path, source.title, split)
            and not (path.suffix == ".gz" and _exists(path.with_suffix(""), source.title, split))]


def _exists(path: Path, title: str, split: str) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    except PermissionError as err:
        raise DatasetError(permission_message(path, f"{title} {split}", err)) from err
    return True


def passes_torchvision_md5(source: Source, root: Path, split: str) -> bool:
    """Whether every file of the split has torchvision's published md5 (the original bytes)."""
    return all(check_integrity(str(path), md5)
               for path, (_, md5) in zip(source.paths(root, split), source.files[split]))


# --- readers ----------------------------------------------------------------------------------

@contextlib.contextmanager
def reading(path: Path, title: str, fix: str) -> Iterator[None]:
    """Turn any failure while decoding ``path`` into a DatasetError naming the file and cause.

    The causes get their own advice: a permission problem is not a damaged file, and a pickle
    that names code to run is neither (it is refused before anything is run).
    """
    from genbench.data.safe_pickle import UnsafePickleError

    try:
        yield
    except DatasetError:
        raise
    except PermissionError as err:
        raise DatasetError(permission_message(path, title, err)) from err
    except UnsafePickleError as err:
        raise DatasetError(
            f"{title}: {display(path)} is not plain data: {err}. It may be hostile. Fix: delete it "
            f"and restore the file from a trusted copy (`genbench data fetch`).") from err
    except Exception as err:  # any decoding failure of a user file is a data problem
        raise DatasetError(
            f"{title}: {display(path)} cannot be read ({type(err).__name__}: {err}); the file is "
            f"truncated or corrupt. Fix: {fix}") from err


def display(path: Path | str) -> str:
    """A path as text that can always be printed: bytes that are not UTF-8 show as \\xNN."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def permission_message(path: Path, title: str, err: OSError) -> str:
    return (f"{title}: permission denied on {display(path)} ({err.strerror}). The file is not "
            f"damaged: this user may not read it (or a folder on its path). Fix: `chmod u+r` the "
            f"file (`u+rx` its folders), ask its owner, or set GENBENCH_DATA to a root you can read.")


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (a FIFO or a device would block or
    never end); with ``limit``, at most that many bytes are read (and more is an error)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DatasetError(f"{display(path)} is not a regular file (a FIFO, device or folder "
                               f"stands where a dataset file belongs). Fix: replace it with the "
                               f"dataset file.")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise ValueError(f"more than the {limit:,} bytes such a file can hold")
    return data


_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # uint8 labels (N,), uint8 images (N, H, W)


def parse_idx(data: bytes, ndim: int) -> torch.Tensor:
    """An IDX array of uint8 (MNIST's format), checked strictly: magic, dims, exact length."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{len(data)} bytes is shorter than an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != _IDX_MAGIC[ndim]:
        raise ValueError(f"IDX magic {magic:#010x}, expected {_IDX_MAGIC[ndim]:#010x} "
                         f"(uint8, {ndim}-d)")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)
    if len(data) != expected:
        raise ValueError(f"the header announces {dims} ({expected:,} bytes), the file has "
                         f"{len(data):,} bytes")
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def _read_idx(tv_class: type) -> Reader:
    """MNIST-style roots: the split's two IDX files, unpacked or ``.gz``, decoded in memory.

    Only the requested split's own two files are opened, so a stray file, a broken file of the
    other split or a FIFO elsewhere cannot block the load. ``.gz`` files are unpacked in memory
    (0.2 s for MNIST train, measured): no unpack cache exists, so none can go stale, be altered,
    leave temporary files or grow.
    """
    def read(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        title = f"{tv_class.__name__} {split}"
        fix = ("replace it (`genbench data fetch` where there is internet) or set GENBENCH_DATA "
               "to a root holding intact data.")
        prefix = "train" if split == "train" else "t10k"
        n_max = {"train": 60_000, "test": 10_000}[split]
        arrays = []
        for kind, ndim, size in (("images-idx3-ubyte", 3, 28 * 28), ("labels-idx1-ubyte", 1, 1)):
            plain = root / tv_class.__name__ / "raw" / f"{prefix}-{kind}"
            packed = plain.with_name(plain.name + ".gz")
            limit = 4 + 4 * ndim + n_max * size
            path = plain if _is_regular(plain) else packed
            with reading(path, title, fix):
                # gzip never grows data by more than ~0.1% (stored blocks), so this bounds the read too
                data = read_regular(path, limit=limit if path is plain else limit + limit // 100 + 1024)
                if path is packed:
                    data = _gunzip_bounded(data, limit)
                arrays.append(parse_idx(data, ndim))
        images, labels = arrays
        return images.unsqueeze(1).contiguous(), labels.to(torch.int64)
    return read


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Unpack gzip bytes in memory, refusing output beyond ``limit`` (a gzip bomb)."""
    out = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    unpacked = out.decompress(data, limit + 1)
    if len(unpacked) > limit:
        raise ValueError(f"it unpacks to more than the {limit:,} bytes such a file can hold")
    if not out.eof:
        raise EOFError("the gzip stream ends early (the file is cut short)")
    return unpacked


def _read_cifar10(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10's pickled batches, rebuilt by a restricted unpickler (no code runs from a data
    file, see :mod:`genbench.data.safe_pickle`), checked for shape, dtype and label count.

    torchvision's class is not used because it calls ``pickle.load`` and checks file md5s,
    which the re-encoded files here fail; genbench checks the decoded content instead."""
    from genbench.data.safe_pickle import load_data_pickle

    title = f"CIFAR-10 {split}"
    fix = ("replace it (`genbench data fetch cifar10` where there is internet) or set "
           "GENBENCH_DATA to a root holding intact data.")
    base = root / tvd.CIFAR10.base_folder
    names = [n for n, _ in (tvd.CIFAR10.train_list if split == "train" else tvd.CIFAR10.test_list)]
    meta_path = base / tvd.CIFAR10.meta["filename"]
    with reading(meta_path, title, fix):
        meta = load_data_pickle(meta_path)
        if not isinstance(meta, dict) or tvd.CIFAR10.meta["key"] not in meta:
            raise ValueError(f"not a CIFAR-10 meta file (no {tvd.CIFAR10.meta['key']!r} entry)")
    images, labels = [], []
    for name in names:
        path = base / name
        with reading(path, title, fix):
            batch = load_data_pickle(path)
            if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
                raise ValueError("not a CIFAR-10 batch (a dict with 'data' and 'labels')")
            data, batch_labels = batch["data"], batch["labels"]
            if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
                    or data.shape[1] != 3 * 32 * 32):
                raise ValueError(f"'data' must be a uint8 array of shape (N, 3072), got "
                                 f"{getattr(data, 'dtype', type(data).__name__)} "
                                 f"{getattr(data, 'shape', '')}")
            if not isinstance(batch_labels, list) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in batch_labels):
                raise ValueError("'labels' must be a list of ints")
            if len(batch_labels) != len(data):
                raise DatasetError(miscounted_message(title, path, len(batch_labels), len(data)))
            images.append(data)
            labels.extend(batch_labels)
    x = torch.from_numpy(np.concatenate(images).reshape(-1, 3, 32, 32).copy())
    return x, torch.tensor(labels, dtype=torch.int64)


def miscounted_message(title: str, where: Path | str, labels: int, images: int) -> str:
    return (f"{title}: {display(where)} holds {labels:,} labels for {images:,} images; every "
            f"image needs exactly one label. The file is altered or mismatched. Fix: restore it "
            f"from a trusted copy (`genbench data fetch`).")


def _read_usps(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    path = root / (tvd.USPS.split_list[split][1])
    with reading(path, f"USPS {split}", "replace it (`genbench data fetch usps` where there is "
                 "internet) or set GENBENCH_DATA to a root holding intact data."):
        if not _is_regular(path):
            read_regular(path)  # raises the "not a regular file" error
        data = tvd.USPS(str(root), train=split == "train", download=False)
    return torch.from_numpy(data.data).unsqueeze(1).contiguous(), torch.as_tensor(
        data.targets, dtype=torch.int64)


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
