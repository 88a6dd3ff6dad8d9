"""`genbench data status` and `genbench data fetch`: the table, and one-paragraph errors."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from genbench.cli import main
from genbench.data.status import fetch
from genbench.errors import DatasetError

# the full datasets: $GENBENCH_DATA when set (as for genbench itself), else shared/datasets
# beside the checkout (CI and this workplace)
SHARED = Path(os.environ.get("GENBENCH_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"full datasets not found at {SHARED}")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "genbench-cache"))
    monkeypatch.delenv("GENBENCH_DATA", raising=False)


@needs_shared
def test_status_lists_every_split_ok(capsys, monkeypatch):
    monkeypatch.setenv("GENBENCH_DATA", str(SHARED))
    assert main(["data", "status"]) == 0
    rows = {tuple(line.split()[:4]): line for line in capsys.readouterr().out.splitlines()}
    expected = {("mnist", "train", "60000"), ("mnist", "test", "10000"),
                ("fashion_mnist", "train", "60000"), ("fashion_mnist", "test", "10000"),
                ("cifar10", "train", "50000"), ("cifar10", "test", "1000"),
                ("usps", "train", "7291"), ("usps", "test", "2007")}
    found = {key[:3]: line for key, line in rows.items()}
    assert expected <= set(found)
    for key in expected:
        assert " ok " in found[key] and found[key].endswith("PARTIAL") == (key[0:2] == ("cifar10", "test"))


def test_status_on_empty_root_is_one_paragraph(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "empty"))
    assert main(["data", "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(tmp_path / "empty") in err
    assert "GENBENCH_DATA" in err and "genbench data fetch" in err


@needs_shared
def test_status_reports_missing_and_broken_splits(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("batches.meta", "test_batch"):
        shutil.copy(SHARED / "cifar-10-batches-py" / name, folder / name)
    (tmp_path / "usps.t.bz2").write_bytes((SHARED / "usps.t.bz2").read_bytes()[:50_000])
    assert main(["data", "status", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    lines = {tuple(line.split()[:2]): line for line in out.splitlines() if line.strip()}
    assert "missing" in lines[("mnist", "train")] and "missing" in lines[("cifar10", "train")]
    assert "ok" in lines[("cifar10", "test")] and "PARTIAL" in lines[("cifar10", "test")]
    assert "FAILED" in lines[("usps", "test")] and "truncated or corrupt" in out


@pytest.fixture
def offline(monkeypatch):
    """No network: name resolution and connections fail as they do on an offline machine."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_fetch_offline_is_a_clear_error(tmp_path, offline, capsys):
    with pytest.raises(DatasetError) as err:
        fetch("usps", root=tmp_path)
    assert "USPS" in str(err.value) and str(tmp_path) in str(err.value)
    assert main(["data", "fetch", "usps", "--root", str(tmp_path)]) == 2
    assert "could not fetch USPS" in capsys.readouterr().err


def test_fetch_unknown_dataset(tmp_path, capsys):
    assert main(["data", "fetch", "imagenet", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
