"""Section 5's linear facts: min-norm interpolation, GD from zero finds it, Hessian is constant."""

import pytest
import torch

from genbench.errors import ConfigError
from genbench.theory import gd_least_squares, global_minima, least_squares_hessian, min_norm_solution


def _problem(n: int = 15, d: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    return X, torch.randn(n, generator=g, dtype=torch.float64)


def test_min_norm_matches_lstsq_and_interpolates():
    X, y = _problem()
    w = min_norm_solution(X, y)
    expected = torch.linalg.lstsq(X, y, driver="gelsd").solution
    torch.testing.assert_close(w, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(X @ w, y, rtol=1e-10, atol=1e-12)


def test_min_norm_rejects_n_greater_than_d():
    with pytest.raises(ConfigError, match="n <= d"):
        min_norm_solution(*_problem(n=10, d=5))


@pytest.mark.parametrize("batch_size", [None, 5])
def test_gd_from_zero_converges_to_min_norm(batch_size):
    X, y = _problem()
    run = gd_least_squares(X, y, steps=4000, batch_size=batch_size, seed=3)
    torch.testing.assert_close(run.w, min_norm_solution(X, y), rtol=0, atol=1e-8)
    assert run.losses[-1] < 1e-20 and run.losses.shape == (4001,)


def test_gd_from_random_start_interpolates_but_is_not_min_norm():
    X, y = _problem()
    w0 = torch.randn(X.shape[1], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = gd_least_squares(X, y, steps=4000, w0=w0).w
    w_star = min_norm_solution(X, y)
    torch.testing.assert_close(X @ w, y, rtol=0, atol=1e-8)
    assert (w - w_star).norm() > 1.0 and w.norm() > w_star.norm()


def test_sgd_is_deterministic_per_seed():
    X, y = _problem()
    a, b = (gd_least_squares(X, y, steps=50, batch_size=4, seed=9).w for _ in range(2))
    assert torch.equal(a, b)


def test_hessian_is_the_same_at_every_global_minimum():
    X, y = _problem()
    minima = global_minima(X, y, count=3, seed=0, scale=10.0)
    torch.testing.assert_close(X @ minima.T, y[:, None].expand(-1, 3), rtol=0, atol=1e-9)
    hessians = [least_squares_hessian(X, y, w) for w in minima]
    for H in hessians:
        torch.testing.assert_close(H, X.T @ X / X.shape[0], rtol=1e-12, atol=1e-12)
    assert (minima[0] - minima[1]).norm() > 1.0
