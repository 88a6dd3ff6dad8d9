"""Gaussian-kernel interpolation: exact fits, chunking, norms, and the memory check."""

import subprocess
import sys

import pytest
import torch

from genbench.errors import ConfigError, GenbenchError
from genbench.theory import MemoryBudgetError, gaussian_kernel, kernel_interpolate, kernel_norm
from genbench.theory.kernels import KernelPrecision, KernelSolveError, kernel_solve_bytes


def _data(n: int = 300, d: int = 50, classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_kernel_matches_cdist_and_chunking_does_not_change_it():
    A, _ = _data(37, 9)
    B, _ = _data(23, 9, seed=1)
    A, B = A.double(), B.double()
    expected = torch.exp(-torch.cdist(A, B) ** 2 / (2 * 1.5**2))
    torch.testing.assert_close(gaussian_kernel(A, B, 1.5), expected)
    assert torch.equal(gaussian_kernel(A, B, 1.5, chunk_size=5), gaussian_kernel(A, B, 1.5, chunk_size=37))


def test_interpolation_fits_random_labels_exactly():
    X, y = _data()
    model = kernel_interpolate(X, y, chunk_size=64)
    assert torch.equal(model.classify(X), y)
    onehot = torch.nn.functional.one_hot(y, 10).double()
    torch.testing.assert_close(model.predict(X), onehot, rtol=0, atol=1e-8)


def test_kernel_norm_is_rkhs_norm():
    X, y = _data(120)
    model = kernel_interpolate(X, y, bandwidth=2.0)
    K = gaussian_kernel(X.double(), X.double(), 2.0)
    expected = torch.sqrt(torch.trace(model.alpha.T @ K @ model.alpha))
    assert kernel_norm(model) == pytest.approx(float(expected), rel=1e-10)


def test_regularization_lowers_the_norm():
    X, y = _data(120)
    assert kernel_norm(kernel_interpolate(X, y, reg=1.0)) < kernel_norm(kernel_interpolate(X, y))


def test_memory_check_raises_before_allocating():
    X = torch.zeros(2_000_000, 1)  # the kernel would need 32 TB
    with pytest.raises(MemoryBudgetError, match="n=2000000") as err:
        kernel_interpolate(X, torch.zeros(2_000_000, dtype=torch.long))
    assert isinstance(err.value, GenbenchError)
    assert kernel_solve_bytes(60_000, 784, 10, torch.float32) < 15e9


def test_float32_data_are_solved_in_place_and_not_counted_twice():
    """Features already in the solve's dtype are used as they are (no copy in memory or in the
    memory check): 50,000 x 32,000 float32 conv features would otherwise need 6.4 GB more."""
    X, y = _data(200)
    model = kernel_interpolate(X, y, dtype=torch.float32, jitter=1e-5)
    assert model.centers.data_ptr() == X.data_ptr()
    assert (kernel_solve_bytes(200, 50, 10, torch.float32)
            - kernel_solve_bytes(200, 50, 10, torch.float32, copies_data=False)) == 4 * 200 * 50
    assert kernel_interpolate(X, y).centers.dtype == torch.float64  # the default still copies


def test_kept_squared_norms_give_the_same_kernel_and_model():
    from genbench.theory.kernels import squared_norms

    A, y = _data(37, 9)
    B, _ = _data(23, 9, seed=1)
    assert torch.equal(squared_norms(B, chunk_size=4), B.pow(2).sum(dim=1))
    assert torch.equal(gaussian_kernel(A, B, 1.5, sq_b=squared_norms(B)), gaussian_kernel(A, B, 1.5))
    model = kernel_interpolate(A, y, chunk_size=8)
    recomputed = type(model)(model.centers, model.alpha, model.bandwidth, model.reg, 8)
    assert torch.equal(model.predict(B), recomputed.predict(B))
    assert kernel_norm(model) == kernel_norm(recomputed)
    assert kernel_norm(model, model.predict(model.centers)) == kernel_norm(model)  # same bits


def test_singular_kernel_is_reported_not_jittered():
    X = torch.zeros(5, 3)  # identical points: K is all ones, rank 1
    with pytest.raises(KernelSolveError, match="positive"):
        kernel_interpolate(X, torch.arange(5), bandwidth=1.0)


def test_bad_arguments():
    X, y = _data(10)
    with pytest.raises(ConfigError, match="bandwidth"):
        gaussian_kernel(X, X, 0.0)
    with pytest.raises(ConfigError, match="reg"):
        kernel_interpolate(X, y, reg=-1.0)


def test_float32_with_jitter_stays_close_to_the_exact_float64_interpolant():
    X, y = _data(400)
    exact = kernel_interpolate(X, y, bandwidth=2.0)
    low = kernel_interpolate(X, y, bandwidth=2.0, dtype=torch.float32, jitter=1e-5)
    assert low.alpha.dtype == torch.float32 and low.jitter == 1e-5 and low.reg == 0.0
    assert torch.equal(low.classify(X), y)  # still interpolates the (random) labels
    torch.testing.assert_close(low.predict(X).double(), exact.predict(X), rtol=0, atol=1e-3)
    with pytest.raises(ConfigError, match="jitter"):
        kernel_interpolate(X, y, jitter=-1e-6)


def test_kernel_precision_names_the_bad_field():
    assert KernelPrecision() == KernelPrecision("float64", 0.0)
    assert KernelPrecision("float32").torch_dtype == torch.float32
    with pytest.raises(ConfigError, match="KernelPrecision.dtype"):
        KernelPrecision("bfloat16")
    with pytest.raises(ConfigError, match="KernelPrecision.jitter"):
        KernelPrecision("float32", jitter=-1.0)


_PEAK = """
import resource, torch
from genbench.theory import kernel_interpolate
torch.set_num_threads(1)
n = 3_000
X = torch.rand(n, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
y = torch.arange(n) % 10
kernel_interpolate(X[:50], y[:50])  # warm up the allocator and LAPACK's workspaces
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
kernel_interpolate(X, y, bandwidth=1.0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print((after - before) / (8 * n * n))
"""


def test_kernel_solve_peaks_at_one_n_by_n_matrix():
    """Factor and solve in place: the peak above the process is ~1 x n^2, where torch's
    cholesky_ex on the row-major K (or cholesky_solve) would copy it once more (2 x)."""
    out = subprocess.run([sys.executable, "-c", _PEAK], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 1.5
