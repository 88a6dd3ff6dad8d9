"""Zhang et al. (2017), Section 5 and Table 3: interpolating any labels with a Gaussian kernel.

Solving K alpha = Y exactly (K_ij = k(x_i, x_j), Y one-hot) gives the minimum-norm interpolant in
the kernel's feature space. Section 5 solves it for all 60,000 MNIST images with one LAPACK call;
here the kernel is built in row chunks directly into one n x n buffer on the data's device, then
factored in place by Cholesky (:func:`torch.linalg.cholesky_ex` on its column-major view, input and
``out=`` the same), so the peak is one n x n matrix: 14.4 GB at n = 60,000 in float32 and 28.8 GB
in float64, within an 80 GB GPU.
Before allocating, the bytes needed are compared with the free memory of the device, and a
:class:`MemoryBudgetError` says what to change instead of the allocator crashing midway.

Conventions (the paper does not state them):
- k(x, x') = exp(-||x - x'||^2 / (2 sigma^2)) with sigma = ``bandwidth``. The default is the
  median heuristic: sigma = the median distance between pairs of (up to 1,000, seeded) points.
- targets: integer labels become one-hot 0/1 rows; the prediction is the argmax of K(x, X) alpha.
- ``reg`` is the l2 regularization of Section 5 ("adding l2 regularization"): (K + reg I) alpha =
  Y. With reg = 0 the system is solved exactly; if Cholesky fails, :class:`KernelSolveError` says
  so. No jitter is ever added silently.
- :func:`kernel_norm` is sqrt(trace(alpha^T K alpha)): the RKHS (feature-space l2) norm of the
  interpolant, summed over the one-hot outputs as a Frobenius norm. This is our reading of the
  "l2-norm of the minimum norm solution ... approximately 220" of Section 5: the min-norm solution
  of Xw = y in feature space has ||w||^2 = alpha^T K alpha.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from genbench.errors import ConfigError, GenbenchError

PREDICT_CHUNK_BYTES = 256 * 2**20  # one (chunk x n) slab of test kernel at a time
KERNEL_DTYPES = ("float32", "float64")  # what kernel features are stored and solved in


class MemoryBudgetError(GenbenchError):
    """A kernel system would not fit in the free memory of its device."""


class KernelSolveError(GenbenchError):
    """The kernel matrix is not numerically positive definite at this dtype and bandwidth."""


def available_bytes(device: torch.device | str) -> int:
    """Free memory of ``device``: cudaMemGetInfo on CUDA, MemAvailable of /proc/meminfo on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def kernel_solve_bytes(n: int, d: int, k: int, dtype: torch.dtype, copies_data: bool = True
                       ) -> int:
    """Bytes :func:`kernel_interpolate` allocates: the n x n kernel (factored in place), the
    targets, the Cholesky workspace (blocked potrf needs O(n * block), block <= 256) and, when the
    data are not already in ``dtype`` on the device (``copies_data``), their copy. Features
    stored in the solve's dtype are used in place: at n = 50,000 with 32,000 random-conv
    features that copy alone would be 6.4 GB."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return itemsize * (n * n + n * (d * copies_data + 2 * k) + 256 * n)


def check_memory(n: int, d: int, k: int, dtype: torch.dtype, device: torch.device | str,
                 copies_data: bool = True) -> None:
    """Raise MemoryBudgetError, before anything is allocated, if the solve cannot fit."""
    need, free = kernel_solve_bytes(n, d, k, dtype, copies_data), available_bytes(device)
    if need > free:
        raise MemoryBudgetError(
            f"kernel interpolation with n={n} points needs {need / 1e9:.2f} GB in {dtype} on "
            f"{device} but only {free / 1e9:.2f} GB is free. Use fewer points, float32 (half the "
            "memory), or a device with more memory (n=60,000 needs 14.4 GB in float32)."
        )


def median_bandwidth(X: Tensor, sample: int = 1000, seed: int = 0) -> float:
    """The median heuristic: median distance between distinct pairs of a seeded subsample."""
    X = X.reshape(X.shape[0], -1)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(X.shape[0], generator=g)[:sample].to(X.device)
    S = X[idx].to(torch.float64)
    dist = torch.cdist(S, S)
    return float(dist[torch.triu_indices(len(S), len(S), offset=1).unbind()].median())


@dataclass(frozen=True)
class KernelPrecision:
    """How a kernel system is solved: ``dtype`` of the n x n matrix and a stated diagonal
    ``jitter`` (relative to the kernel's unit diagonal).

    The default, float64 with no jitter, is the exact interpolant. float32 halves the memory
    (n = 60,000 MNIST images: 14.4 GB instead of 28.8), which is what lets Table 3's setting run
    on a 24 GiB machine; the jitter keeps its Cholesky clear of round-off (float32 rounds at
    6e-8, and the errors of a factorization of order n grow like sqrt(n) of that). Anything but the
    default must be checked against float64 at an n where both fit.
    """

    dtype: str = "float64"
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.dtype not in KERNEL_DTYPES:
            raise ConfigError(f"KernelPrecision.dtype={self.dtype!r}; allowed: {KERNEL_DTYPES}")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"KernelPrecision.jitter={self.jitter}: must be in [0, 1) (a "
                              "fraction of the kernel's unit diagonal)")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


def _default_chunk(n: int, itemsize: int) -> int:
    return max(1, PREDICT_CHUNK_BYTES // max(1, n * itemsize))


def squared_norms(X: Tensor, chunk_size: int | None = None) -> Tensor:
    """||x_i||^2 for each row, a chunk of rows at a time: ``X.pow(2)`` whole would be a
    temporary the size of X (6.4 GB for 50,000 x 32,000 float32 features)."""
    X = X.reshape(X.shape[0], -1)
    chunk = chunk_size or _default_chunk(X.shape[1], X.element_size())
    return torch.cat([X[s : s + chunk].pow(2).sum(dim=1) for s in range(0, X.shape[0], chunk)])


def gaussian_kernel(
    A: Tensor, B: Tensor, bandwidth: float, chunk_size: int | None = None, out: Tensor | None = None,
    sq_b: Tensor | None = None,
) -> Tensor:
    """K_ij = exp(-||a_i - b_j||^2 / (2 bandwidth^2)), built in row chunks on A's device.

    Each chunk is written straight into ``out`` (allocated if None) and transformed in place, so
    no temporary the size of K is ever made; ||a||^2 + ||b||^2 - 2 a.b is clamped at 0. ``sq_b``:
    B's :func:`squared_norms`, when the caller keeps them (a model evaluated chunk by chunk).
    """
    if bandwidth <= 0:
        raise ConfigError(f"bandwidth: must be positive, got {bandwidth}")
    A, B = A.reshape(A.shape[0], -1), B.reshape(B.shape[0], -1).to(A)
    if out is None:
        out = torch.empty(A.shape[0], B.shape[0], dtype=A.dtype, device=A.device)
    chunk = chunk_size or _default_chunk(B.shape[0], A.element_size())
    sq_b = squared_norms(B) if sq_b is None else sq_b.to(A)
    for start in range(0, A.shape[0], chunk):
        a = A[start : start + chunk]
        block = out[start : start + chunk]
        torch.addmm(sq_b[None, :], a, B.T, alpha=-2.0, out=block)
        block.add_(a.pow(2).sum(dim=1, keepdim=True)).clamp_(min=0)
        block.mul_(-0.5 / bandwidth**2).exp_()
    return out


@dataclass(frozen=True)
class KernelModel:
    """f(x) = sum_i alpha_i k(x, x_i): the interpolant, with what is needed to evaluate it."""

    centers: Tensor
    alpha: Tensor
    bandwidth: float
    reg: float
    chunk_size: int | None = None
    jitter: float = 0.0
    sq_norms: Tensor | None = None  # the centers' squared norms, computed once (squared_norms)

    def center_norms(self) -> Tensor:
        return squared_norms(self.centers) if self.sq_norms is None else self.sq_norms

    def predict(self, X: Tensor) -> Tensor:
        """Scores (m, k), computed chunk by chunk of test rows so memory stays O(chunk * n)."""
        X = X.reshape(X.shape[0], -1).to(self.centers)
        n = self.centers.shape[0]
        chunk = self.chunk_size or _default_chunk(n, self.centers.element_size())
        sq = self.center_norms()
        parts = [
            gaussian_kernel(X[s : s + chunk], self.centers, self.bandwidth, chunk, sq_b=sq)
            @ self.alpha
            for s in range(0, X.shape[0], chunk)
        ]
        return torch.cat(parts)

    def classify(self, X: Tensor) -> Tensor:
        """Predicted class: the argmax of the one-hot scores."""
        return self.predict(X).argmax(dim=1)


def _targets(Y: Tensor, n: int, num_classes: int | None, dtype: torch.dtype) -> Tensor:
    if Y.shape[0] != n:
        raise ConfigError(f"Y: need one target row per point ({n}), got {Y.shape[0]}")
    if not Y.is_floating_point():
        classes = num_classes or int(Y.max()) + 1
        return F.one_hot(Y.long(), classes).to(dtype)
    return Y.reshape(n, -1).to(dtype)


def kernel_interpolate(
    X: Tensor,
    Y: Tensor,
    bandwidth: float | None = None,
    reg: float = 0.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    num_classes: int | None = None,
    chunk_size: int | None = None,
    jitter: float = 0.0,
) -> KernelModel:
    """Solve (K + (reg + jitter) I) alpha = Y by in-place Cholesky; Y: int labels (one-hot) or
    float (n, k).

    float64 by default: a Gaussian kernel on 10^4-10^5 images has condition numbers far beyond
    float32's 1e7, and an exact fit of random labels needs the solve to resolve them. ``jitter``
    is the numerical counterpart of ``reg``: the same diagonal shift, but stated as the price of
    a lower precision (float32 at n = 60,000 fits in 14.4 GB where float64 needs 28.8), never added
    unless asked for. Its effect must be measured against float64 where both fit.
    """
    if reg < 0:
        raise ConfigError(f"reg: must be >= 0, got {reg}")
    if jitter < 0:
        raise ConfigError(f"jitter: must be >= 0, got {jitter}")
    device = torch.device(device) if device is not None else X.device
    n = X.shape[0]
    X = X.reshape(n, -1)
    k = num_classes or (int(Y.max()) + 1 if not Y.is_floating_point() else Y.reshape(n, -1).shape[1])
    check_memory(n, X.shape[1], k, dtype, device, copies_data=X.dtype != dtype or X.device != device)
    X = X.to(device=device, dtype=dtype)
    if not torch.isfinite(X).all():
        raise ConfigError("X: contains NaN or inf")
    T = _targets(Y.to(device), n, num_classes, dtype)
    bandwidth = median_bandwidth(X) if bandwidth is None else bandwidth
    sq = squared_norms(X)
    K = gaussian_kernel(X, X, bandwidth, chunk_size, sq_b=sq)
    if reg + jitter:
        K.diagonal().add_(reg + jitter)
    # K is symmetric, so its column-major view K.mT is the same matrix in the layout LAPACK
    # factors in place: passed as input and out, no copy is made (with K itself, torch copies
    # it to column-major first: 2 n^2 at the peak, measured on the CPU). The two triangular
    # solves read L in place too, where cholesky_solve would copy it.
    A = K.mT
    L, info = torch.linalg.cholesky_ex(A, out=(A, torch.empty(0, dtype=torch.int32, device=device)))
    if int(info) != 0:
        raise KernelSolveError(
            f"Cholesky of the {n} x {n} Gaussian kernel (bandwidth {bandwidth:.4g}, reg {reg}, "
            f"jitter {jitter}, {dtype}) failed at pivot {int(info)}: the matrix is not "
            "numerically positive definite. Use float64, a larger stated jitter (measured against "
            "float64 where both fit), a smaller bandwidth, or an explicit reg > 0 (which changes "
            "the problem from interpolation to kernel ridge regression)."
        )
    alpha = torch.linalg.solve_triangular(L.mT, torch.linalg.solve_triangular(L, T, upper=False),
                                          upper=True)
    return KernelModel(centers=X, alpha=alpha, bandwidth=bandwidth, reg=reg,
                       chunk_size=chunk_size, jitter=jitter, sq_norms=sq)


def kernel_norm(model: KernelModel, train_scores: Tensor | None = None) -> float:
    """sqrt(trace(alpha^T K alpha)), K alpha a chunk of rows at a time (no n x n memory).

    ``train_scores``: ``model.predict(model.centers)``, which is K alpha, when the caller has
    it (a training error needs it): then no kernel is rebuilt here. Otherwise K is rebuilt,
    2 n^2 d FLOP, as much as the solve's own Gram matrix (13 minutes at n = 50,000 and
    d = 32,000 on 2 cores). Both ways give the same bits: the same chunks, summed in order."""
    C, alpha = model.centers, model.alpha
    chunk = model.chunk_size or _default_chunk(C.shape[0], C.element_size())
    sq = model.center_norms() if train_scores is None else None
    total = torch.zeros((), dtype=alpha.dtype, device=alpha.device)
    for s in range(0, C.shape[0], chunk):
        if train_scores is None:
            scores = gaussian_kernel(C[s : s + chunk], C, model.bandwidth, chunk, sq_b=sq) @ alpha
        else:
            scores = train_scores[s : s + chunk].to(alpha)
        total += (alpha[s : s + chunk] * scores).sum()
    return float(total.sqrt())


__all__ = [
    "KERNEL_DTYPES",
    "KernelModel",
    "KernelPrecision",
    "KernelSolveError",
    "MemoryBudgetError",
    "available_bytes",
    "check_memory",
    "gaussian_kernel",
    "kernel_interpolate",
    "kernel_norm",
    "kernel_solve_bytes",
    "median_bandwidth",
    "squared_norms",
]
