"""Gaussian-kernel interpolation time against n (Zhang et al. 2017, Section 5 / issue 5).

Groups: ``kernel-build`` (the chunked n x n kernel), ``kernel-solve`` (build + in-place
Cholesky + solve, i.e. :func:`genbench.theory.kernel_interpolate` end to end, float64).
Targets: n = 20,000 in <= 60 s on a 2-core CPU; n = 60,000 (full MNIST) in <= 15 s on an H100.
Inputs are seeded uniform [0, 1]^784 rows (MNIST's shape): the cost depends on n and d only.

Default sizes keep ``--benchmark-disable`` (one untimed call each, as CI runs it) fast:
n in 1k, 2k, 5k. ``--scale full`` or ``GENBENCH_KERNEL_BENCH=full`` adds 10k and 20k on the
CPU; on CUDA the sizes are 10k, 20k and 60k.

Run: ``pytest benchmarks/test_kernels.py --benchmark-only [--scale full]``
"""

import os

import pytest
import torch

from genbench.theory import gaussian_kernel, kernel_interpolate

D, CLASSES = 784, 10
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SMALL, LARGE_CPU, LARGE_CUDA = (1_000, 2_000, 5_000), (10_000, 20_000), (10_000, 20_000, 60_000)


def _full(config: pytest.Config) -> bool:
    scale = config.getoption("--scale", default=None) or os.environ.get("GENBENCH_SCALE", "")
    return scale == "full" or os.environ.get("GENBENCH_KERNEL_BENCH") == "full"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "n" in metafunc.fixturenames:
        sizes = LARGE_CUDA if DEVICE == "cuda" else SMALL + (LARGE_CPU if _full(metafunc.config) else ())
        metafunc.parametrize("n", sizes, ids=[f"n{n // 1000}k" for n in sizes])


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    X = torch.rand(n, D, generator=g, dtype=torch.float64)
    y = torch.randint(CLASSES, (n,), generator=g)
    return X.to(DEVICE), y.to(DEVICE)


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


@pytest.mark.benchmark(group="kernel-build")
def test_kernel_build(benchmark, n):
    X, _ = _data(n)
    out = torch.empty(n, n, dtype=X.dtype, device=X.device)

    def build():
        gaussian_kernel(X, X, bandwidth=10.0, out=out)
        _sync()

    benchmark.extra_info.update(n=n, d=D, device=DEVICE, dtype="float64")
    benchmark.pedantic(build, rounds=1 if n >= 10_000 else 3, iterations=1)
    assert torch.isfinite(out.diagonal()).all()


@pytest.mark.benchmark(group="kernel-solve")
def test_kernel_solve(benchmark, n):
    X, y = _data(n)

    def solve():
        model = kernel_interpolate(X, y, bandwidth=10.0, num_classes=CLASSES)
        _sync()
        return model

    benchmark.extra_info.update(n=n, d=D, device=DEVICE, dtype="float64")
    model = benchmark.pedantic(solve, rounds=1 if n >= 10_000 else 3, iterations=1)
    assert model.alpha.shape == (n, CLASSES)
