"""Convergence slowdown (Zhang et al. 2017, Figure 1b): the time to fit CIFAR-10 as labels get
noisier, and under Figure 1a's input randomizations.

One case per (model, label-noise p) and per input randomization; each times one whole fit (to a
confirmed 100% training accuracy) with ``benchmark.pedantic`` and keeps epochs and steps to fit
in ``extra_info``; the summary prints each model's slowdown ratio against p=0.

Scales (the genbench plugin's ``--scale``): by default smoke, on the CPU: the MLPs on 4,000
fixture images and the convolutional models on 200 at batch 32 (the Zhang claims' smoke design), the
p=0 and p=1 ends only for those. ``--scale full`` runs the paper's setting (all 50,000 images,
every model at every p) on a GPU. With ``--benchmark-disable`` (CI's untimed run that keeps the
suite from rotting) only the MLP 1x512 rows run, on 500 images, so it takes seconds.

Run: ``pytest benchmarks/test_convergence.py --benchmark-only`` (``--benchmark-autosave`` to
keep the numbers, ``--benchmark-compare-fail=median:20%`` to gate a regression against them).
"""

from __future__ import annotations

import pytest
import torch

from genbench.experiment import Corruption, RunCache
from genbench.studies import zhang as z

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SMOKE = {"mlp": z.Budget(4_000, None, 120, eval_every=120),
         "conv": z.Budget(200, None, 30, batch_size=32, eval_every=30)}
UNTIMED = z.Budget(500, None, 80, eval_every=80)  # --benchmark-disable: a quick liveness run
FULL = z.Budget(None, None, 300, eval_every=300)
SMOKE_CONV_LEVELS = (0.0, 1.0)
_fits: dict[tuple[str, str], dict[str, float]] = {}

CASES = [(m, p) for m in z.TABLE1_MODELS for p in z.NOISE_LEVELS]
INPUTS = [k for k in z.INPUT_CORRUPTIONS if k not in ("none", "random_labels")]


def _budget(request: pytest.FixtureRequest, model: str) -> z.Budget:
    if request.config.option.scale == "full":
        return FULL
    if request.config.option.benchmark_disable:
        return UNTIMED
    return SMOKE["mlp" if model.startswith("mlp") else "conv"]


def _skip_unless_selected(request: pytest.FixtureRequest, model: str, p: float) -> None:
    full = request.config.option.scale == "full"
    if request.config.option.benchmark_disable and model != "mlp_1x512":
        pytest.skip("timing disabled: only the MLP 1x512 rows run (CI keeps the suite alive)")
    if not full and not model.startswith("mlp") and p not in SMOKE_CONV_LEVELS:
        pytest.skip("smoke scale times the convolutional models at p=0 and p=1 only")


def _time_fit(benchmark, request, model: str, corruption: Corruption, key: str) -> None:
    b = _budget(request, model)
    source = "full" if request.config.option.scale == "full" else "fixture"
    config = z.fit_config(model, b)
    spec = z.data_spec(source, b)
    results = []

    def run() -> None:  # a fresh cache each round: every round really trains
        (r,), _, _ = z.train_corrupted(model, spec, corruption, config, (0,), DEVICE,
                                       cache=RunCache())
        results.append(r)

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    r = results[-1]
    info = dict(device=str(DEVICE), n_train=r.n_train, fitted=r.fitted, fit_epoch=r.fit_epoch,
                fit_step=r.fit_step, fit_seconds=r.fit_seconds)
    benchmark.extra_info.update(info)
    _fits[(model, key)] = info


@pytest.mark.parametrize("model,p", CASES, ids=[f"{m}-p{p}" for m, p in CASES])
def test_label_noise(benchmark, request, model, p):
    _skip_unless_selected(request, model, p)
    benchmark.group = f"convergence: {model}"
    _time_fit(benchmark, request, model, Corruption("random_labels", p, 0), f"p={p}")


@pytest.mark.parametrize("kind", INPUTS)
def test_input_randomization(benchmark, request, kind):
    model = "mlp_1x512" if request.config.option.scale != "full" else "inception_small"
    benchmark.group = f"convergence: {model}"
    _time_fit(benchmark, request, model, Corruption(kind, 1.0, 0), kind)


def test_summary(capsys):
    """Print each model's p=1 / p=0 slowdown in steps and seconds (runs last)."""
    if not _fits:
        pytest.skip("no convergence case ran")
    lines = [f"device: {DEVICE}"]
    for model in z.TABLE1_MODELS:
        first, last = _fits.get((model, "p=0.0")), _fits.get((model, "p=1.0"))
        if first and last and first["fit_step"] and last["fit_step"]:
            lines.append(f"{model}: steps to fit p=1/p=0 = "
                         f"{last['fit_step'] / first['fit_step']:.2f}x, seconds "
                         f"{last['fit_seconds'] / first['fit_seconds']:.2f}x")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
