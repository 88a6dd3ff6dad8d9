"""Committed real subsets (``fixtures/``) so that a fresh clone runs smoke-scale claims offline.

Each fixture is a deterministic, class-balanced subset of a real split, stored as a compressed
``.npz`` (``x`` uint8 NCHW, ``y`` int64, ``indices`` into the source split) and listed in
``fixtures/MANIFEST.json`` with its content sha256. Loading checks that sha256 exactly as
:func:`genbench.data.load` checks full splits. ``fixtures/build.py`` rebuilds them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

import genbench
from genbench.data.dataset import ArrayDataset
from genbench.data.integrity import check_fingerprint
from genbench.data.sources import check_split, get_source
from genbench.errors import DatasetError

MANIFEST = "MANIFEST.json"
REBUILD = "python fixtures/build.py --root <data root>"


def fixtures_dir() -> Path:
    """``$GENBENCH_FIXTURES``, else ``fixtures/`` beside the package in the repository."""
    override = os.environ.get("GENBENCH_FIXTURES")
    return Path(override) if override else Path(genbench.__file__).resolve().parent.parent / "fixtures"


def fixture_key(name: str, split: str) -> str:
    return f"{name}/{split}"


def fixture_file(name: str, split: str) -> str:
    return f"{name}_{split}.npz"


def read_manifest(folder: Path | None = None) -> dict:
    path = (folder or fixtures_dir()) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"the fixture manifest {path} cannot be read ({err}). Fix: restore it "
                           f"from the repository, or rebuild the fixtures: {REBUILD}.") from err


def load_fixture(name: str, split: str = "train") -> ArrayDataset:
    """The committed subset of ``name``/``split``, content-checked against the manifest.

    ``nominal_size`` is the published size of the split, so ``size_note()`` reads e.g.
    "4,000 of 50,000 images"; ``partial`` is inherited from the source split (CIFAR-10 test).
    No PartialDatasetWarning is raised: a fixture is a subset on purpose.
    """
    source = get_source(name)
    check_split(split)
    folder = fixtures_dir()
    entry = read_manifest(folder)["fixtures"].get(fixture_key(name, split))
    path = folder / fixture_file(name, split)
    fix = f"restore {path.name} from the repository or rebuild the fixtures: {REBUILD}."
    if entry is None or not path.is_file():
        raise DatasetError(f"no {source.title} {split} fixture at {path} (or not in its manifest). "
                           f"Fix: {fix}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, y = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"])
        ds = ArrayDataset(x, y, source.num_classes, name, partial=entry["source_partial"],
                          nominal_size=source.sizes[split])
    except DatasetError:
        raise
    except Exception as err:  # a truncated zip, a missing array, a wrong dtype
        raise DatasetError(f"the {source.title} {split} fixture {path} cannot be read "
                           f"({type(err).__name__}: {err}). Fix: {fix}") from err
    check_fingerprint(ds, entry["sha256"], f"the {source.title} {split} fixture", path, fix)
    return ds


def balanced_indices(y: torch.Tensor, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` indices of each class drawn without replacement, sorted (source order)."""
    rng = np.random.default_rng(seed)
    labels = y.cpu().numpy()
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} images, fewer than {per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))
