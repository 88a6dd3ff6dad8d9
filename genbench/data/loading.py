"""`load(name, split, root)`: a whole split as an integrity-checked `ArrayDataset`.

Nothing here touches the network; `genbench data fetch NAME` (:mod:`genbench.data.status`) is
the only path that downloads.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from genbench.data.dataset import ArrayDataset, PartialDatasetWarning
from genbench.data.integrity import verify
from genbench.data.sources import (check_split, display, get_source, miscounted_message,
                                   missing_files, permission_message, resolve_root)
from genbench.errors import DatasetError


@dataclass(frozen=True)
class Loaded:
    """A checked split and how its integrity was established (shown by `genbench data status`)."""

    dataset: ArrayDataset
    verdict: str
    root: Path


def load(name: str, split: str = "train", root: str | os.PathLike[str] | None = None) -> ArrayDataset:
    """Load split ``split`` of dataset ``name`` (mnist, fashion_mnist, cifar10, usps).

    The root is ``root``, else ``$GENBENCH_DATA``, else ``~/.cache/genbench/data``, in
    torchvision's layout. The decoded content must match its recorded sha256 (or, where genbench
    could not record it, carry torchvision's md5s); anything else raises a DatasetError that
    names the dataset, the path and the fix. A known-partial split loads with ``partial=True``
    and a PartialDatasetWarning.
    """
    loaded = load_checked(name, split, root)
    ds = loaded.dataset
    if ds.partial:
        warnings.warn(f"{name} {split} from {loaded.root} is a known-partial split: "
                      f"{ds.size_note()}; report this size with every result that uses it",
                      PartialDatasetWarning, stacklevel=2)
    return ds


def load_checked(name: str, split: str = "train",
                 root: str | os.PathLike[str] | None = None) -> Loaded:
    """Like :func:`load` but without the warning, returning the integrity verdict too."""
    source = get_source(name)
    check_split(split)
    base, origin = resolve_root(root)
    absent = missing_files(source, base, split)
    if absent:
        raise DatasetError(
            f"{source.title} {split} not found under data root {display(base)} (from {origin}): "
            f"missing {', '.join(display(p) for p in absent)}. Fix: run `genbench data fetch {name}` where there "
            f"is internet, or set GENBENCH_DATA to a folder holding torchvision's layout of it.")
    files = ", ".join(display(p) for p in source.paths(base, split))
    try:
        x, y = source.reader(base, split)
    except DatasetError:
        raise
    except PermissionError as err:
        raise DatasetError(permission_message(Path(err.filename or base), f"{source.title} {split}",
                                              err)) from err
    except Exception as err:  # any decoding failure of user files is a data problem
        raise DatasetError(
            f"{source.title} {split} under {display(base)} cannot be read "
            f"({type(err).__name__}: {err}); a file is truncated or corrupt among {files}. Fix: "
            f"replace the files (`genbench data fetch {name}` where there is internet) or set "
            f"GENBENCH_DATA to a root holding intact data.") from err
    title = f"{source.title} {split}"
    if len(y) != len(x):
        raise DatasetError(miscounted_message(title, files, len(y), len(x)))
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= source.num_classes):
        bad = y[(y < 0) | (y >= source.num_classes)]
        raise DatasetError(
            f"{title}: {files} holds {len(bad):,} labels outside 0..{source.num_classes - 1} "
            f"(e.g. {int(bad[0])}); {source.title} has {source.num_classes} classes. The files "
            f"are altered or from another dataset. Fix: restore them from a trusted copy "
            f"(`genbench data fetch {name}`).")
    nominal = source.sizes[split]
    ds = ArrayDataset(x, y, source.num_classes, name, partial=len(y) < nominal, nominal_size=nominal)
    return Loaded(ds, verify(ds, source, base, split), base)
