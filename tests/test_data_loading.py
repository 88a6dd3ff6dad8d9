"""The data layer: ArrayDataset, checked loading of real datasets, fixtures.

Tests that need the full datasets read ``$GENBENCH_DATA``, else ``shared/datasets`` beside the
repository (as CI and this workplace have it), and skip with the reason when it is absent.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.data import ArrayDataset, PartialDatasetWarning, load, load_fixture
from genbench.data import integrity
from genbench.data.fixtures import balanced_indices, read_manifest
from genbench.data.loading import load_checked
from genbench.data.sources import SOURCES
from genbench.errors import ConfigError, DatasetError

# the full datasets: $GENBENCH_DATA when set (as for genbench itself), else shared/datasets
# beside the checkout (CI and this workplace)
SHARED = Path(os.environ.get("GENBENCH_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"full datasets not found at {SHARED}")
CIFAR = "cifar-10-batches-py"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Unpacked files go to a per-session folder, never to the user's home."""
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "genbench-cache"))
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    monkeypatch.delenv("GENBENCH_FIXTURES", raising=False)


def tiny(n: int = 6, k: int = 3) -> ArrayDataset:
    x = torch.arange(n * 2 * 3 * 3, dtype=torch.int64).remainder(256).to(torch.uint8)
    return ArrayDataset(x.reshape(n, 2, 3, 3), torch.arange(n) % k, k, "tiny", nominal_size=10)


# --- ArrayDataset ---------------------------------------------------------------------------

def test_array_dataset_api():
    ds = tiny()
    assert len(ds) == 6 and ds.in_shape == (2, 3, 3)
    sub = ds.subset([4, 1])
    assert torch.equal(sub.y, torch.tensor([1, 1])) and torch.equal(sub.x[0], ds.x[4])
    assert sub.nominal_size == 10 and sub.size_note() == "2 of 10 images"
    assert ds.with_labels(torch.zeros(6, dtype=torch.int64)).y.sum() == 0
    assert ds.with_x(ds.x.float()).x.dtype == torch.float32
    assert ds.to("cpu").fingerprint() == ds.fingerprint()
    assert ArrayDataset(ds.x, ds.y, 3, "t").size_note() == "6 images"


def test_size_note_uses_thousands_separators():
    ds = ArrayDataset(torch.zeros(1000, 1, 1, 1, dtype=torch.uint8),
                      torch.zeros(1000, dtype=torch.int64), 10, "c", True, 10_000)
    assert ds.size_note() == "1,000 of 10,000 images"


def test_fingerprint_definition_is_stable():
    """The recorded table depends on this definition: changing it must be deliberate."""
    assert tiny().fingerprint() == (
        "50667c581c78feb9537b64dc57ad43786bcad6d88b87012cca59f507470b15f0")


def test_fingerprint_sees_every_change():
    ds = tiny()
    x = ds.x.clone()
    x[0, 0, 0, 0] += 1
    y = ds.y.clone()
    y[-1] = 0
    prints = {ds.fingerprint(), ds.with_x(x).fingerprint(), ds.with_labels(y).fingerprint(),
              ds.subset(range(5)).fingerprint(), ds.with_x(ds.x.reshape(6, 2, 9, 1)).fingerprint()}
    assert len(prints) == 5


@pytest.mark.parametrize("x, y, k", [
    (torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), 2),
    (torch.zeros(2, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), 2),
    (torch.zeros(2, 1, 2, 2, dtype=torch.int32), torch.zeros(2, dtype=torch.int64), 2),
    (torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32), 2),
    (torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 2]), 2),
])
def test_array_dataset_rejects_bad_content(x, y, k):
    with pytest.raises(ConfigError):
        ArrayDataset(x, y, k, "bad")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_to_cuda_keeps_content():
    ds = tiny().to("cuda")
    assert ds.x.is_cuda and ds.fingerprint() == tiny().fingerprint()


# --- missing data and root resolution --------------------------------------------------------

def test_missing_dataset_names_dataset_path_and_fix(tmp_path):
    with pytest.raises(DatasetError) as err:
        load("cifar10", root=tmp_path)
    message = str(err.value)
    for part in ("CIFAR-10", str(tmp_path), "genbench data fetch cifar10", "GENBENCH_DATA"):
        assert part in message
    assert "\n" not in message


def test_root_comes_from_env_then_default(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetError, match=r"\$GENBENCH_DATA"):
        load("usps", "test")
    monkeypatch.delenv("GENBENCH_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DatasetError, match=r"\.cache/genbench/data"):
        load("usps", "test")


def test_unknown_dataset_and_split():
    with pytest.raises(DatasetError, match="unknown dataset"):
        load("imagenet")
    with pytest.raises(DatasetError, match="unknown split"):
        load("mnist", "val")


# --- real data -------------------------------------------------------------------------------

def copy_cifar(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / CIFAR
    folder.mkdir(parents=True)
    for name in ("batches.meta",) + names:
        shutil.copy(SHARED / CIFAR / name, folder / name)
    return folder


@needs_shared
def test_cifar10_test_is_flagged_partial():
    with pytest.warns(PartialDatasetWarning, match="1,000 of 10,000"):
        ds = load("cifar10", "test", root=SHARED)
    assert (len(ds), ds.partial, ds.nominal_size, ds.in_shape) == (1000, True, 10_000, (3, 32, 32))
    assert ds.x.dtype == torch.uint8 and ds.y.dtype == torch.int64
    assert ds.x[0, :, 0, 0].tolist() == [158, 112, 49]  # first test image, README
    assert torch.bincount(ds.y).tolist() == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]


@needs_shared
def test_truncated_cifar_file_is_a_clear_error(tmp_path):
    folder = copy_cifar(tmp_path, "test_batch")
    data = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as err:
        load("cifar10", "test", root=tmp_path)
    assert "truncated or corrupt" in str(err.value) and str(folder / "test_batch") in str(err.value)


@needs_shared
def test_truncated_cifar_train_batch_is_a_clear_error(tmp_path):
    folder = copy_cifar(tmp_path)
    for i in range(2, 6):
        (folder / f"data_batch_{i}").symlink_to(SHARED / CIFAR / f"data_batch_{i}")
    (folder / "data_batch_1").write_bytes((SHARED / CIFAR / "data_batch_1").read_bytes()[:100_000])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load("cifar10", "train", root=tmp_path)


def _rewrite_test_batch(folder: Path, edit) -> None:
    with open(folder / "test_batch", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    edit(batch)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch, f)


@needs_shared
def test_altered_cifar_content_names_both_fingerprints(tmp_path):
    folder = copy_cifar(tmp_path, "test_batch")

    def flip_label(batch):
        batch["labels"][0] = (batch["labels"][0] + 1) % 10
    _rewrite_test_batch(folder, flip_label)
    with pytest.raises(DatasetError) as err:
        load("cifar10", "test", root=tmp_path)
    message = str(err.value)
    assert integrity.RECORDED[("cifar10", "test")] in message and "got" in message
    assert "CIFAR-10" in message and str(folder / "test_batch") in message


@needs_shared
def test_shorter_cifar_split_is_never_silently_accepted(tmp_path):
    folder = copy_cifar(tmp_path, "test_batch")

    def drop_half(batch):
        batch["data"], batch["labels"] = batch["data"][:500], batch["labels"][:500]
    _rewrite_test_batch(folder, drop_half)
    with pytest.raises(DatasetError, match="500 images"):
        load("cifar10", "test", root=tmp_path)


@needs_shared
def test_mnist_from_read_only_gz_root():
    ds = load("mnist", "test", root=SHARED)
    assert (len(ds), ds.in_shape, ds.partial) == (10_000, (1, 28, 28), False)
    assert torch.bincount(ds.y)[:3].tolist() == [980, 1135, 1032]
    assert not (SHARED / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


@needs_shared
def test_truncated_gz_is_a_clear_error(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(SHARED / "FashionMNIST" / "raw" / name, raw / name)
    data = (raw / "t10k-images-idx3-ubyte.gz").read_bytes()
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load("fashion_mnist", "test", root=tmp_path)


@needs_shared
def test_md5_fallback_accepts_original_files(tmp_path, monkeypatch):
    """usps.t.bz2 here is the original file, so it stands in for content not recorded here."""
    monkeypatch.setitem(integrity.RECORDED, ("usps", "test"), "0" * 64)
    loaded = load_checked("usps", "test", root=SHARED)
    assert loaded.verdict == integrity.VERDICT_MD5 and len(loaded.dataset) == 2007
    shutil.copy(SHARED / "usps.t.bz2", tmp_path / "usps.t.bz2")
    with open(tmp_path / "usps.t.bz2", "r+b") as f:  # a byte inside the stream: md5 differs
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(DatasetError):
        load_checked("usps", "test", root=tmp_path)


# --- fixtures --------------------------------------------------------------------------------

FIXTURE_SIZES = {("mnist", "train"): 4000, ("mnist", "test"): 2000,
                 ("fashion_mnist", "train"): 4000, ("fashion_mnist", "test"): 2000,
                 ("cifar10", "train"): 4000, ("cifar10", "test"): 1000,
                 ("usps", "train"): 7291, ("usps", "test"): 2007}


@pytest.mark.parametrize("name, split", list(FIXTURE_SIZES))
def test_fixture_loads_checked_and_balanced(name, split):
    ds = load_fixture(name, split)
    assert len(ds) == FIXTURE_SIZES[(name, split)]
    assert ds.nominal_size == SOURCES[name].sizes[split] and ds.x.dtype == torch.uint8
    assert ds.fingerprint() == read_manifest()["fixtures"][f"{name}/{split}"]["sha256"]
    if FIXTURE_SIZES[(name, split)] in (4000, 2000):
        assert set(torch.bincount(ds.y).tolist()) == {len(ds) // 10}
    assert ds.partial == ((name, split) == ("cifar10", "test"))


def test_fixture_size_note():
    assert load_fixture("cifar10", "train").size_note() == "4,000 of 50,000 images"


@needs_shared
def test_fixture_rows_are_the_source_rows():
    ds = load_fixture("mnist", "test")
    with np.load(Path(__file__).resolve().parents[1] / "fixtures" / "mnist_test.npz") as f:
        indices = f["indices"]
    assert torch.equal(load("mnist", "test", root=SHARED).subset(indices).x, ds.x)


def test_altered_or_missing_fixture_is_a_clear_error(tmp_path, monkeypatch):
    source = Path(__file__).resolve().parents[1] / "fixtures"
    shutil.copy(source / "MANIFEST.json", tmp_path / "MANIFEST.json")
    with np.load(source / "usps_test.npz") as f:
        arrays = dict(f)
    arrays["y"][0] = (arrays["y"][0] + 1) % 10
    np.savez_compressed(tmp_path / "usps_test.npz", **arrays)
    monkeypatch.setenv("GENBENCH_FIXTURES", str(tmp_path))
    with pytest.raises(DatasetError, match="expected sha256") as err:
        load_fixture("usps", "test")
    assert str(tmp_path / "usps_test.npz") in str(err.value)
    with pytest.raises(DatasetError, match="fixtures/build.py"):
        load_fixture("usps", "train")


def test_balanced_indices_are_deterministic_and_balanced():
    y = torch.arange(1000) % 4
    first, again = balanced_indices(y, 50, seed=3), balanced_indices(y, 50, seed=3)
    assert np.array_equal(first, again) and np.all(np.diff(first) > 0)
    assert np.bincount(y.numpy()[first]).tolist() == [50] * 4
    assert not np.array_equal(first, balanced_indices(y, 50, seed=4))
