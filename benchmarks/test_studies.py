"""A study's throughput: runs per second of ``fit_many`` against K sequential ``fit`` calls.

The extreme-overfitting studies are 200 runs per (model, dataset) and group, so the speed-up
that matters is on those runs: eo_mlp (Xavier init, Adam 1e-3, batch 128) on Algorithm 1's
corrupted MNIST set. On a GPU: the full data, K = 32; on the CPU: the 500/100 smoke subset,
K = 5, 3 epochs. Targets (issue 7, foundation fit_many) live here, never in timed asserts.

Run: ``pytest benchmarks/test_studies.py --benchmark-only``.
"""

from __future__ import annotations

import pytest
import torch

from genbench import models
from genbench.experiment import DataSpec, seeds
from genbench.studies import extreme as eo
from genbench.training import TrainConfig, fit, fit_many

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CPU = DEVICE.type == "cpu"
K = 5 if CPU else 32
SPEC = DataSpec("mnist", source="fixture" if CPU else "full",
                n_train=500 if CPU else None, n_test=100 if CPU else None)
CONFIG = TrainConfig.extreme(max_epochs=3, eval_every=3)
_medians: dict[str, float] = {}


@pytest.fixture(scope="module")
def corrupted():
    return eo.study_data(SPEC, 0, DEVICE).extreme


def _models() -> list[torch.nn.Module]:
    return [models.build("eo_mlp", (1, 28, 28), 10, seed=s, init=eo.INIT) for s in seeds(K)]


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.mark.benchmark(group=f"study: eo_mlp on Algorithm 1's MNIST, K={K} runs")
@pytest.mark.parametrize("impl", ["sequential_fit", "fit_many_vmap", "fit_many_auto"])
def test_study_runs_per_second(benchmark, corrupted, impl):
    def run() -> None:
        nets = _models()
        if impl == "sequential_fit":
            for net, s in zip(nets, seeds(K)):
                fit(net, corrupted, CONFIG.replace(seed=s), progress=False)
        else:
            fit_many(nets, corrupted, CONFIG, seeds=list(seeds(K)), progress=False,
                     strategy=impl.removeprefix("fit_many_"))
        _sync()

    benchmark.pedantic(run, rounds=2, warmup_rounds=0)
    if benchmark.stats is None:  # --benchmark-disable: ran once, untimed
        return
    _medians[impl] = benchmark.stats.stats.median
    benchmark.extra_info.update(device=str(DEVICE), runs_per_s=K / _medians[impl])
    if impl != "sequential_fit" and "sequential_fit" in _medians:
        benchmark.extra_info["speedup_vs_sequential"] = _medians["sequential_fit"] / _medians[impl]


def test_summary(capsys):
    """Print runs/s and the speed-ups measured above (runs last in this module)."""
    if not _medians:
        pytest.skip("no benchmark ran (timing disabled)")
    lines = [f"device: {DEVICE}, K={K}, {CONFIG.max_epochs} epochs"]
    lines += [f"{impl}: {K / t:.2f} runs/s" for impl, t in _medians.items()]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
