"""`genbench data status` and `genbench data fetch NAME`.

Status reads every split through the same checked path as :func:`genbench.data.load`, so what
it prints ok is exactly what a claim will get. Fetch is the only code in genbench that may open
the network, and only because the user asked.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from genbench.data.dataset import PartialDatasetWarning
from genbench.data.loading import load_checked
from genbench.data.sources import (SOURCES, SPLITS, display, get_source, missing_files,
                                   resolve_root)
from genbench.errors import DatasetError, GenbenchError

MISSING = "missing"
FAILED = "FAILED"


@dataclass(frozen=True)
class SplitStatus:
    """One row of the status table; ``error`` holds the full message of a failed check."""

    dataset: str
    split: str
    verdict: str
    n: int | None = None
    nominal: int | None = None
    sha256: str = ""
    partial: bool = False
    error: str = ""


def split_status(name: str, split: str, root: str | os.PathLike[str] | None = None) -> SplitStatus:
    """One split's row. Any failure of the split (a hostile, unreadable or damaged file, even an
    unexpected exception) becomes a FAILED row with its message, so the table goes on."""
    source = get_source(name)
    base, _ = resolve_root(root)
    try:
        if missing_files(source, base, split):
            return SplitStatus(name, split, MISSING, nominal=source.sizes[split])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartialDatasetWarning)
            loaded = load_checked(name, split, root)
    except GenbenchError as err:
        return SplitStatus(name, split, FAILED, nominal=source.sizes[split], error=str(err))
    except Exception as err:  # noqa: BLE001 (a status table reports every split, whatever broke)
        return SplitStatus(name, split, FAILED, nominal=source.sizes[split],
                           error=f"unexpected {type(err).__name__}: {err}")
    ds = loaded.dataset
    return SplitStatus(name, split, loaded.verdict, len(ds), ds.nominal_size, ds.fingerprint(),
                       ds.partial)


def format_table(rows: list[SplitStatus]) -> str:
    header = ("dataset", "split", "n", "of", "sha256", "integrity", "partial")
    lines = [header] + [
        (r.dataset, r.split, "-" if r.n is None else str(r.n), str(r.nominal), r.sha256[:12] or "-",
         r.verdict, "PARTIAL" if r.partial else "")
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)


def print_status(root: str | os.PathLike[str] | None = None) -> int:
    """Print the status table; 0 when every split is present and ok, 1 otherwise.

    Raises a DatasetError (the CLI prints it as one paragraph) when nothing at all is found,
    because then the root itself is the problem.
    """
    base, origin = resolve_root(root)
    rows = [split_status(name, split, root) for name in SOURCES for split in SPLITS]
    if all(row.verdict == MISSING for row in rows):
        raise DatasetError(
            f"no dataset found under data root {display(base)} (from {origin}): genbench looks there for "
            f"torchvision's layout (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py, usps.bz2). "
            f"Fix: set GENBENCH_DATA to the folder that holds the datasets, or run "
            f"`genbench data fetch NAME` (NAME in {', '.join(SOURCES)}) where there is internet.")
    print(f"data root: {display(base)} (from {origin})")
    print(format_table(rows))
    for row in rows:
        if row.error:
            print(f"\n{row.dataset} {row.split}: {row.error}")
    if any(row.partial for row in rows):
        print("\nPARTIAL: the split holds fewer images than published; results report the size.")
    return 0 if all(row.verdict.startswith("ok") for row in rows) else 1


def fetch(name: str, root: str | os.PathLike[str] | None = None) -> None:
    """Download ``name`` into the root with torchvision (``download=True``), then check it."""
    source = get_source(name)
    base, origin = resolve_root(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            source.tv_class(str(base), train=split == "train", download=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise DatasetError(
            f"could not fetch {source.title} into data root {base} (from {origin}): "
            f"{type(err).__name__}: {err}. Fix: fetch where there is internet and a writable "
            f"root, or copy the files in torchvision's layout and set GENBENCH_DATA to them.") from err
    for split in SPLITS:
        row = split_status(name, split, base)
        if row.error:
            raise DatasetError(row.error)
        print(f"{name} {split}: {row.n} images, {row.verdict}")
