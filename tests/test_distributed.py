"""fit() and fit_many() under torchrun with 2 gloo ranks on the CPU equal one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genbench.training import RunResult
from tests.distributed_worker import CONFIG, SPEC, build
from genbench.experiment import prepare
from genbench.training import fit, fit_many
from genbench.training.runtime import Runtime


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dist") / "result.json"
    worker = Path(__file__).with_name("distributed_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(worker), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def _numbers(r: RunResult) -> dict:
    return {k: v for k, v in r.curves.items() if k != "seconds"}


def _close(a: list, b: list, rel: float = 1e-4, abs_: float = 1e-5) -> bool:
    """Entry by entry: None (an epoch without evaluation) only equals None, numbers to tolerance.

    pytest.approx refuses None inside a sequence under a relative tolerance (pytest >= 9.1)."""
    return len(a) == len(b) and all(
        (x is None and y is None)
        or (x is not None and y is not None and y == pytest.approx(x, rel=rel, abs=abs_))
        for x, y in zip(a, b))


def test_ddp_fit_on_two_gloo_ranks_equals_one_process(two_ranks):
    assert two_ranks["world"] == 2
    # one device per rank, decided by Runtime.from_env (cuda:LOCAL_RANK on a GPU box)
    gpu = __import__("torch").cuda.is_available()
    assert two_ranks["runtimes"] == [[f"cuda:{r}" if gpu else "cpu", r, r] for r in (0, 1)]
    train, test = prepare(SPEC, device=Runtime.from_env("full").device)  # as the ranks
    alone = fit(build(0), train, CONFIG, test, progress=False)
    ranks = RunResult.from_json(two_ranks["fit"])
    assert ranks.n_train == alone.n_train == 400 and ranks.steps == alone.steps
    for key, values in _numbers(alone).items():
        assert _close(values, ranks.curves[key]), (key, values, ranks.curves[key])
    assert ranks.final == pytest.approx(alone.final, rel=1e-4, abs=1e-5)


def test_fit_many_splits_models_over_ranks_and_gathers_all(two_ranks):
    train, test = prepare(SPEC, device=Runtime.from_env("full").device)
    # the ranks run with one thread each (OMP_NUM_THREADS=1); bitwise equality is promised
    # for one thread count (CPU GEMMs split their sums by threads; docs/architecture.md)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = fit_many([build(s) for s in range(3)], train, CONFIG, test, seeds=[0, 1, 2])
    finally:
        torch.set_num_threads(threads)
    gathered = [RunResult.from_json(t) for t in two_ranks["fit_many"]]
    assert [r.seed for r in gathered] == [0, 1, 2]
    for a, b in zip(alone, gathered):
        assert _numbers(a) == _numbers(b) and a.final == b.final
