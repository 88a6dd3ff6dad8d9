"""The ImageNet path end to end on a tiny ImageFolder tree: streamed loading, random labels
fixed across ranks, Inception V3 trained with DDP on 2 gloo ranks; and its clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genbench.data.imagenet import load_imagenet
from genbench.errors import DatasetError
from genbench.training import RunResult

CLASSES, PER_CLASS = 3, 6


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(CLASSES):
            folder = root / split / f"n0000000{c}"
            folder.mkdir(parents=True)
            for i in range(PER_CLASS if split == "train" else 2):
                pixels = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i}.png")
    return root


def test_random_labels_are_drawn_once_from_the_seed(tree):
    a = load_imagenet("train", tree, random_labels_seed=1, image_size=75)
    b = load_imagenet("train", tree, random_labels_seed=1, image_size=75)
    true = load_imagenet("train", tree, image_size=75)
    assert a.targets.tolist() == b.targets.tolist() and len(a) == CLASSES * PER_CLASS
    assert true.targets.tolist() == sorted(true.targets.tolist())
    image, index = a.stream_dataset()[4]
    assert image.shape == (3, 75, 75) and str(image.dtype) == "torch.uint8" and index == 4


def test_missing_root_names_the_path_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("GENBENCH_IMAGENET", raising=False)
    with pytest.raises(DatasetError, match="GENBENCH_IMAGENET"):
        load_imagenet("train")
    with pytest.raises(DatasetError, match=str(tmp_path / "train")):
        load_imagenet("train", tmp_path)


def test_table2_path_on_two_gloo_ranks(tree, tmp_path):
    worker = Path(__file__).with_name("imagenet_worker.py")
    out = tmp_path / "rank"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(worker), str(tree), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(2)]
    assert all(r["world"] == 2 for r in ranks)
    assert ranks[0]["labels"] == ranks[1]["labels"]  # random labels identical on every rank
    results = [RunResult.from_json(r["result"]) for r in ranks]
    assert results[0].final == results[1].final  # every rank returns the same result
    assert results[0].n_train == CLASSES * PER_CLASS and results[0].n_test == CLASSES * 2
    assert results[0].epochs == 1 and np.isfinite(results[0].final["train_loss"])
