"""Engine throughput, measured against its baselines in the same run.

* ``fit`` against a plain PyTorch loop (DataLoader over a TensorDataset, per-batch host to
  device copy, ``.item()`` per step) on the same model, data, epochs and device.
* ``fit_many`` (K models side by side) against K sequential ``fit`` calls.

The headline figures are ratios, in each case's ``extra_info`` and in the printed summary;
targets (issue "Foundation 2/3"): on a GPU fit >= 10x the DataLoader loop for mlp_1x512 on
CIFAR-10 and fit_many(K=32) >= 10x sequential; on a CPU fit never slower than the loop and
fit_many never materially slower than sequential. Targets live here, never in timed asserts.

Run: ``pytest benchmarks/test_engine.py --benchmark-only`` (``--benchmark-autosave`` to keep
the numbers, ``--benchmark-compare-fail=median:10%`` to gate a regression).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from genbench import models
from genbench.experiment import Corruption, DataSpec, prepare
from genbench.training import TrainConfig, fit, fit_many

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
EPOCHS = 3
N_TRAIN = 2_000 if DEVICE.type == "cpu" else None  # the CPU measures a 2,000-image subset
K = 8 if DEVICE.type == "cpu" else 32
CONFIG = TrainConfig.zhang("mlp_1x512", max_epochs=EPOCHS, eval_every=EPOCHS)
_medians: dict[str, float] = {}


@pytest.fixture(scope="module")
def data():
    spec = DataSpec("cifar10", source="fixture" if N_TRAIN else "full", n_train=N_TRAIN,
                    preprocess="zhang")
    train, _ = prepare(spec, Corruption("random_labels", 1.0, seed=0), DEVICE)
    return train


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def dataloader_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    config: TrainConfig) -> None:
    """The baseline: the textbook PyTorch training loop (host-resident data)."""
    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=config.batch_size,
                        shuffle=True, generator=torch.Generator().manual_seed(config.seed))
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
    model.train()
    for _ in range(config.max_epochs):
        for xb, yb in loader:
            xb, yb = xb.to(DEVICE), yb.to(DEVICE)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
        sched.step()


def _model(seed: int = 0) -> torch.nn.Module:
    return models.build("mlp_1x512", (3, 28, 28), 10, seed=seed).to(DEVICE)


def _record(benchmark, key: str, samples: int) -> None:
    if benchmark.stats is None:  # --benchmark-disable: the code ran once, untimed
        return
    median = benchmark.stats.stats.median
    _medians[key] = median
    benchmark.extra_info.update(device=str(DEVICE), samples_per_s=samples / median)


@pytest.mark.benchmark(group="engine: fit vs DataLoader loop (mlp_1x512, CIFAR-10)")
@pytest.mark.parametrize("impl", ["dataloader_loop", "genbench_fit"])
def test_fit_vs_dataloader(benchmark, data, impl):
    def run() -> None:
        if impl == "genbench_fit":
            fit(_model(), data, CONFIG, progress=False)
        else:
            dataloader_loop(_model(), data.x, data.y, CONFIG)
        _sync()

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    _record(benchmark, impl, len(data) * EPOCHS)
    if impl == "genbench_fit" and "dataloader_loop" in _medians:
        benchmark.extra_info["speedup_vs_dataloader"] = (
            _medians["dataloader_loop"] / _medians["genbench_fit"])


@pytest.mark.benchmark(group=f"engine: fit_many(K={K}) vs K sequential fit (mlp_1x512)")
@pytest.mark.parametrize("strategy", ["sequential", "vmap", "auto"])
def test_fit_many_vs_sequential(benchmark, data, strategy):
    def run() -> None:
        fit_many([_model(s) for s in range(K)], data, CONFIG, seeds=list(range(K)),
                 strategy=strategy, progress=False)
        _sync()

    benchmark.pedantic(run, rounds=2, warmup_rounds=0)
    _record(benchmark, f"many_{strategy}", K * len(data) * EPOCHS)
    if strategy != "sequential" and "many_sequential" in _medians:
        benchmark.extra_info["speedup_vs_sequential"] = (
            _medians["many_sequential"] / _medians[f"many_{strategy}"])


def test_summary(capsys):
    """Print the ratios measured above (runs last in this module)."""
    if not _medians:
        pytest.skip("no benchmark ran (timing disabled)")
    lines = [f"device: {DEVICE}"]
    if {"dataloader_loop", "genbench_fit"} <= _medians.keys():
        lines.append(f"fit vs DataLoader loop: "
                     f"{_medians['dataloader_loop'] / _medians['genbench_fit']:.2f}x")
    for strategy in ("vmap", "auto"):
        if {"many_sequential", f"many_{strategy}"} <= _medians.keys():
            lines.append(f"fit_many[{strategy}] vs sequential (K={K}): "
                         f"{_medians['many_sequential'] / _medians[f'many_{strategy}']:.2f}x")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
