"""Hostile and careless data roots (issue 15, items 1, 6, 7): no data file runs code, only the
requested split's own regular files are opened, and every failure names its file and cause.

Every hostile input is built here, at test time, in ``tmp_path``: planted pickles that would
create a file if they were executed, FIFOs, unreadable files, altered labels.
"""

from __future__ import annotations

import gzip
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from genbench.cli import main
from genbench.data import load
from genbench.data.safe_pickle import UnsafePickleError, load_data_pickle
from genbench.data.status import split_status
from genbench.errors import DatasetError

CIFAR = "cifar-10-batches-py"
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("GENBENCH_DATA", raising=False)


class Planted:
    """Unpickling this calls ``os.system``/``open`` to create ``marker``: code from a data file."""

    def __init__(self, marker: Path, how: str = "system") -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "system":
            return os.system, (f"touch {self.marker}",)
        return open, (str(self.marker), "w")


def cifar_batch(n: int = 20, seed: int = 0, labels: list[int] | None = None) -> dict:
    rng = np.random.default_rng(seed)
    return {"batch_label": "testing batch 1 of 1",
            "labels": labels if labels is not None else [int(v) for v in rng.integers(0, 10, n)],
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}


def cifar_root(tmp_path: Path, test_batch=None, meta=None, protocol: int = 2) -> Path:
    folder = tmp_path / CIFAR
    folder.mkdir(parents=True, exist_ok=True)
    for name, obj in (("batches.meta", meta if meta is not None else
                       {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": 20}),
                      ("test_batch", test_batch if test_batch is not None else cifar_batch())):
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
    return tmp_path


# --- item 1: no code runs from a data file ---------------------------------------------------

@pytest.mark.parametrize("how", ["system", "open"])
@pytest.mark.parametrize("where", ["test_batch", "meta", "nested"])
def test_planted_cifar_pickle_runs_nothing(tmp_path, how, where):
    marker = tmp_path / "PWNED"
    planted = Planted(marker, how)
    if where == "test_batch":
        root = cifar_root(tmp_path / "root", test_batch=planted)
    elif where == "meta":
        root = cifar_root(tmp_path / "root", meta=planted)
    else:  # a real-looking batch with the payload deep inside its labels
        batch = cifar_batch()
        batch["labels"] = [planted] + batch["labels"][1:]
        root = cifar_root(tmp_path / "root", test_batch=batch)
    with pytest.raises(DatasetError) as err:
        load("cifar10", "test", root=root)
    assert not marker.exists()
    message = str(err.value)
    assert "not plain data" in message and CIFAR in message and "nothing from the file was run" in message


def test_restricted_unpickler_still_reads_numpy_arrays_in_every_protocol(tmp_path):
    batch = cifar_batch(5)
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}"
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        back = load_data_pickle(path)
        assert back["labels"] == batch["labels"] and np.array_equal(back["data"], batch["data"])


def test_restricted_unpickler_refuses_any_other_global(tmp_path):
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps({"data": threading.Lock}, protocol=2))  # a class, not data
    with pytest.raises(UnsafePickleError, match="allocate_lock"):
        load_data_pickle(path)


def test_status_on_a_hostile_root_runs_nothing_and_goes_on(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    root = cifar_root(tmp_path / "root", test_batch=Planted(marker))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "t10k", images=np.zeros((3, 28, 28), np.uint8), labels=[0, 1, 2], gz=True)
    assert main(["data", "status", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert not marker.exists()
    rows = {tuple(line.split()[:2]): line for line in out.splitlines() if line.strip()}
    assert "FAILED" in rows[("cifar10", "test")] and "missing" in rows[("cifar10", "train")]
    assert "FAILED" in rows[("mnist", "test")]  # the table goes on after the broken split
    assert "missing" in rows[("usps", "test")] and "not plain data" in out


# --- item 6: MNIST-style roots ---------------------------------------------------------------

def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: list[int], gz: bool) -> None:
    n = len(images)
    image_bytes = ((2051).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big")
                   + (28).to_bytes(4, "big") + images.astype(np.uint8).tobytes())
    label_bytes = ((2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big")
                   + bytes(np.asarray(labels, np.uint8)))
    for name, data in ((f"{prefix}-images-idx3-ubyte", image_bytes),
                       (f"{prefix}-labels-idx1-ubyte", label_bytes)):
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)


def mnist_root(tmp_path: Path, labels=(0, 1, 2, 3), gz: bool = True) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(len(labels) * 784).reshape(len(labels), 28, 28) % 256
    write_idx(raw, "t10k", images, list(labels), gz)
    return tmp_path


def test_mnist_gz_is_read_in_memory_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """No unpack cache: nothing is written anywhere, so nothing can go stale or grow."""
    root = mnist_root(tmp_path / "root")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(DatasetError, match="recorded content"):  # synthetic: content differs
        load("mnist", "test", root=root)
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_other_split_broken_stray_files_and_fifo_do_not_block_a_load(tmp_path):
    root = mnist_root(tmp_path / "root")
    raw = root / "MNIST" / "raw"
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    os.mkfifo(raw / "train-labels-idx1-ubyte.gz")
    (raw / "stray.gz").write_bytes(b"not gzip")
    os.mkfifo(raw / "stray-fifo")
    with pytest.raises(DatasetError, match="recorded content"):  # got past every other file
        load("mnist", "test", root=root)


def test_fifo_in_place_of_the_split_file_is_named_not_waited_on(tmp_path):
    root = mnist_root(tmp_path / "root")
    raw = root / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    os.mkfifo(raw / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetError, match="not a regular file"):
        load("mnist", "test", root=root)


def test_gzip_bomb_is_refused(tmp_path):
    root = mnist_root(tmp_path / "root")
    raw = root / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 20_000_000))
    with pytest.raises(DatasetError, match="more than the"):
        load("mnist", "test", root=root)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_names_the_file(tmp_path, gz):
    root = mnist_root(tmp_path / "root", gz=gz)
    path = root / "MNIST" / "raw" / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DatasetError) as err:
        load("mnist", "test", root=root)
    assert "truncated or corrupt" in str(err.value) and str(path) in str(err.value)


# --- item 7: each cause its own message ------------------------------------------------------

def test_out_of_range_labels_are_named(tmp_path):
    root = mnist_root(tmp_path / "root", labels=(0, 1, 12, 3))
    with pytest.raises(DatasetError) as err:
        load("mnist", "test", root=root)
    message = str(err.value)
    assert "outside 0..9" in message and "e.g. 12" in message and "truncated" not in message


def test_miscounted_labels_are_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "t10k", np.zeros((4, 28, 28), np.uint8), [0, 1, 2], gz=True)
    with pytest.raises(DatasetError, match="3 labels for 4 images"):
        load("mnist", "test", root=tmp_path)
    root = cifar_root(tmp_path / "c", test_batch=cifar_batch(5, labels=[1, 2, 3]))
    with pytest.raises(DatasetError, match="3 labels for 5 images") as err:
        load("cifar10", "test", root=root)
    assert "test_batch" in str(err.value)


def test_cifar_labels_outside_the_classes_are_named(tmp_path):
    root = cifar_root(tmp_path, test_batch=cifar_batch(3, labels=[1, 10, 2]))
    with pytest.raises(DatasetError, match="outside 0..9"):
        load("cifar10", "test", root=root)


@pytest.mark.skipif(ROOT_USER, reason="root reads any file: permissions cannot be tested")
def test_unreadable_file_and_folder_say_permission(tmp_path):
    root = mnist_root(tmp_path / "root")
    path = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    path.chmod(0)
    try:
        with pytest.raises(DatasetError) as err:
            load("mnist", "test", root=root)
        assert "permission denied" in str(err.value) and "truncated" not in str(err.value)
        assert str(path) in str(err.value) and "chmod" in str(err.value)
    finally:
        path.chmod(0o644)
    raw = root / "MNIST" / "raw"
    raw.chmod(0)
    try:
        with pytest.raises(DatasetError, match="permission denied"):
            load("mnist", "test", root=root)
    finally:
        raw.chmod(0o755)


def test_permission_error_has_its_own_message_even_as_root(tmp_path, monkeypatch):
    """The same check where the tests run as root (which reads any file): the OS refusal is
    simulated at ``os.open`` for one file of the split."""
    import genbench.data.sources as sources

    root = mnist_root(tmp_path / "root")
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    real_open = os.open

    def refuse(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(sources.os, "open", refuse)
    with pytest.raises(DatasetError) as err:
        load("mnist", "test", root=root)
    assert "permission denied" in str(err.value) and str(path) in str(err.value)
    assert "truncated" not in str(err.value)


def test_non_utf8_root_loads_and_its_error_prints(tmp_path, capsys):
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/r\xff\xfe"))
    mnist_root(root, labels=(0, 1, 12, 3))
    with pytest.raises(DatasetError) as err:
        load("mnist", "test", root=root)
    assert "\\xff\\xfe" in str(err.value)  # shown, never a UnicodeEncodeError
    str(err.value).encode("utf-8")
    assert main(["data", "status", "--root", str(root)]) == 1
    assert "\\xff\\xfe" in capsys.readouterr().out


def test_split_status_turns_any_failure_into_its_row(tmp_path):
    root = cifar_root(tmp_path, test_batch=["not", "a", "dict"])
    row = split_status("cifar10", "test", root)
    assert row.verdict == "FAILED" and "not a CIFAR-10 batch" in row.error


def test_planted_pickle_in_a_fixture_runs_nothing(tmp_path, monkeypatch):
    import json

    from genbench.data import load_fixture
    from genbench.data.fixtures import MANIFEST

    marker = tmp_path / "PWNED"
    folder = tmp_path / "fixtures"
    folder.mkdir()
    np.savez(folder / "mnist_test.npz", x=np.array([Planted(marker)], dtype=object),
             y=np.zeros(1, np.int64))
    (folder / MANIFEST).write_text(json.dumps({"fixtures": {"mnist/test": {
        "file": "mnist_test.npz", "n": 1, "source_partial": False, "sha256": "0" * 64}}}))
    monkeypatch.setenv("GENBENCH_FIXTURES", str(folder))
    with pytest.raises(DatasetError, match="cannot be read"):
        load_fixture("mnist", "test")
    assert not marker.exists()


def test_fifo_named_like_an_image_is_left_out_of_an_image_folder(tmp_path):
    from PIL import Image

    from genbench.data.imagenet import load_imagenet

    for cls in ("a", "b"):
        (tmp_path / "val" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "val" / cls / "real.png")
    os.mkfifo(tmp_path / "val" / "a" / "trap.png")
    ds = load_imagenet("val", root=tmp_path, image_size=8, workers=0)
    assert len(ds) == 2
