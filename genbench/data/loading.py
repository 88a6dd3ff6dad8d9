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
from genbench.data.sources import check_split, get_source, missing_files, resolve_root
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
            f"{source.title} {split} not found under data root {base} (from {origin}): missing "
            f"{', '.join(str(p) for p in absent)}. Fix: run `genbench data fetch {name}` where there "
            f"is internet, or set GENBENCH_DATA to a folder holding torchvision's layout of it.")
    try:
        x, y = source.reader(base, split)
    except DatasetError:
        raise
    except Exception as err:  # any decoding failure of user files is a data problem
        files = ", ".join(str(p) for p in source.paths(base, split))
        raise DatasetError(
            f"{source.title} {split} under {base} cannot be read ({type(err).__name__}: {err}); "
            f"a file is truncated or corrupt among {files}. Fix: replace the files "
            f"(`genbench data fetch {name}` where there is internet) or set GENBENCH_DATA to a "
            f"root holding intact data.") from err
    nominal = source.sizes[split]
    ds = ArrayDataset(x, y, source.num_classes, name, partial=len(y) < nominal, nominal_size=nominal)
    return Loaded(ds, verify(ds, source, base, split), base)
