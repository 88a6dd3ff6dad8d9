"""Zhang et al. (2017), Section 5: linear least squares with more parameters than points (n < d).

With X of full row rank n < d, every w with Xw = y is a global minimum of the empirical loss
L(w) = 0.5 ||Xw - y||^2 / n. Two facts from Section 5 are computed here:

- gradient descent (or SGD) started at w = 0 never leaves the row space of X, so if it converges
  to an interpolant it converges to the one in the row space: the minimum-norm solution
  w* = X^T (X X^T)^{-1} y (Eq. 3). From a start w0 the limit is w* + (I - P) w0 instead, with P
  the projector onto the row space.
- the Hessian of L is X^T X / n at every w, so curvature cannot tell the global minima apart.
  For a loss that is not quadratic but still zero exactly at interpolation (log-cosh) the
  Hessian varies with w, yet is X^T X / n again at every global minimum: the statement with
  content, checked against points away from the minima where it differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genbench.errors import ConfigError


def _row_space_basis(X: Tensor) -> tuple[Tensor, Tensor]:
    """Q (d, n) with orthonormal columns spanning the rows of X, and R (n, n) with X^T = Q R."""
    n, d = X.shape
    if n > d:
        raise ConfigError(f"X: need n <= d for an interpolating linear model, got n={n}, d={d}")
    Q, R = torch.linalg.qr(X.T)
    diag = R.diagonal().abs()
    if diag.min() <= n * torch.finfo(X.dtype).eps * diag.max():
        raise ConfigError("X: rows are (numerically) linearly dependent; Xw = y may have no solution")
    return Q, R


def _float64_2d(X: Tensor) -> Tensor:
    X = X.reshape(X.shape[0], -1).to(torch.float64)
    if not torch.isfinite(X).all():
        raise ConfigError("X: contains NaN or inf")
    return X


def min_norm_solution(X: Tensor, y: Tensor) -> Tensor:
    """w* = X^T (X X^T)^{-1} y, the minimum-l2-norm solution of Xw = y (float64, n <= d).

    Computed from the QR factorisation X^T = Q R, w* = Q R^{-T} y, whose error grows with cond(X)
    rather than cond(X X^T) = cond(X)^2 as forming the Gram matrix would. y may be (n,) or (n, k).
    """
    X = _float64_2d(X)
    Q, R = _row_space_basis(X)
    y64 = y.to(X)
    c = torch.linalg.solve_triangular(R.T, y64.reshape(X.shape[0], -1), upper=False)
    return (Q @ c).reshape((X.shape[1],) + tuple(y.shape[1:]))


def row_space_projection(X: Tensor, v: Tensor) -> Tensor:
    """P v, the component of v (d,) or (d, k) in the row space of X."""
    Q, _ = _row_space_basis(_float64_2d(X))
    v = v.to(Q)
    return Q @ (Q.T @ v)


def least_squares_loss(w: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """L(w) = 0.5 ||Xw - y||^2 / n, the empirical loss of Section 5 with the square loss."""
    return 0.5 * (X @ w - y).pow(2).sum() / X.shape[0]


def least_squares_hessian(X: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """The Hessian of :func:`least_squares_loss` at w, by automatic differentiation (torch.func).

    Analytically it is X^T X / n whatever w is; computing it at several w with autodiff is the
    check that the claim Z.S5.hessian needs, rather than assuming the formula.
    """
    # jacrev of jacrev rather than torch.func.hessian (jacfwd of jacrev): forward-mode AD loads
    # torch.jit decompositions, which emits a FutureWarning that the test suite treats as error.
    return torch.func.jacrev(torch.func.jacrev(least_squares_loss))(w, X, y)


def logcosh_loss(w: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """L(w) = mean_i log cosh(x_i . w - y_i): zero exactly at interpolation, like the square loss,
    but not quadratic, so its Hessian (1/n) sum_i sech^2(r_i) x_i x_i^T changes with w.

    At every interpolating w (all residuals r_i = 0) that Hessian is X^T X / n: the statement of
    Section 5 has content here, unlike for the square loss whose Hessian is X^T X / n at every w.
    (log(cosh(r)) is exact in float64 for |r| < 700; the residuals of the claims are O(1).)"""
    return torch.log(torch.cosh(X @ w - y)).mean()


def loss_hessian(loss: str, X: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """The Hessian at w of ``loss`` ("square": :func:`least_squares_loss`, "logcosh":
    :func:`logcosh_loss`), by automatic differentiation (torch.func), not by its formula."""
    fns = {"square": least_squares_loss, "logcosh": logcosh_loss}
    if loss not in fns:
        raise ConfigError(f"loss: need one of {sorted(fns)}, got {loss!r}")
    return torch.func.jacrev(torch.func.jacrev(fns[loss]))(w, X, y)


def non_minima(X: Tensor, y: Tensor, minima: Tensor, residual_rms: float, seed: int) -> Tensor:
    """(count, d) points away from the global minima: each minimum moved along a row-space
    direction scaled so that the residuals Xw - y have root-mean-square ``residual_rms``."""
    X = _float64_2d(X)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(X.shape[1], minima.shape[0], generator=g, dtype=torch.float64).to(X.device)
    v = row_space_projection(X, z)  # (d, count): moves the residuals, unlike a null-space step
    rms = (X @ v).pow(2).mean(dim=0).sqrt()
    return minima + (v * (residual_rms / rms)).T


def global_minima(X: Tensor, y: Tensor, count: int, seed: int, scale: float = 1.0) -> Tensor:
    """(count, d) distinct global minima w* + (I - P) z, z ~ N(0, scale^2 I) drawn with ``seed``."""
    X = _float64_2d(X)
    w_star = min_norm_solution(X, y)
    g = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(X.shape[1], count, generator=g, dtype=torch.float64).to(X.device)
    return (w_star[:, None] + z - row_space_projection(X, z)).T


@dataclass(frozen=True)
class GDResult:
    """Final weights and the full-batch loss after every step (index 0: at w0)."""

    w: Tensor
    losses: Tensor
    lr: float


def default_lr(X: Tensor, batch_size: int | None) -> float:
    """1 / L, L the smoothness constant of the loss being stepped on (so every step descends).

    Full batch: L = lambda_max(X^T X / n). Mini-batches: L <= max_i ||x_i||^2 bounds the largest
    eigenvalue of every batch's X_B^T X_B / |B|, so 1 / max_i ||x_i||^2 is safe for any batch.
    """
    if batch_size is None:
        return 1.0 / float(torch.linalg.matrix_norm(X, ord=2) ** 2 / X.shape[0])
    return 1.0 / float(X.pow(2).sum(dim=1).max())


def gd_least_squares(
    X: Tensor,
    y: Tensor,
    steps: int,
    w0: Tensor | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> GDResult:
    """Plain GD (batch_size=None) or SGD on L(w) = 0.5 ||Xw - y||^2 / n, in float64.

    SGD visits the points in a fresh permutation each epoch, drawn from a generator seeded with
    ``seed`` (a trailing partial batch is skipped); batch gradients are averages over the batch.
    w0 defaults to 0 (Section 5's start).
    """
    if steps < 0:
        raise ConfigError(f"steps: must be >= 0, got {steps}")
    X = _float64_2d(X)
    y = y.to(X)
    n, d = X.shape
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ConfigError(f"batch_size: must be in [1, n={n}] or None, got {batch_size}")
    lr = default_lr(X, batch_size) if lr is None else lr
    if lr <= 0:
        raise ConfigError(f"lr: must be positive, got {lr}")
    w = torch.zeros(d, dtype=torch.float64, device=X.device) if w0 is None else w0.to(X).clone()
    g = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    losses = [least_squares_loss(w, X, y)]
    for _ in range(steps):
        if batch_size is None:
            Xb, yb = X, y
        else:
            if order.numel() < batch_size:
                order = torch.randperm(n, generator=g)
            idx, order = order[:batch_size].to(X.device), order[batch_size:]
            Xb, yb = X[idx], y[idx]
        w = w - lr * (Xb.T @ (Xb @ w - yb)) / Xb.shape[0]
        losses.append(least_squares_loss(w, X, y))
    return GDResult(w=w, losses=torch.stack(losses), lr=lr)


__all__ = [
    "GDResult",
    "default_lr",
    "gd_least_squares",
    "global_minima",
    "least_squares_hessian",
    "least_squares_loss",
    "min_norm_solution",
    "row_space_projection",
]
