"""Theorem 1, Lemma 1 and Corollary 1 constructions: exact fits within the float64 error bound."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genbench.errors import ConfigError
from genbench.theory import (
    depth_k_network,
    interleave,
    interpolation_residuals,
    interpolation_tolerance,
    layer_counts,
    lemma1_matrix,
    theorem1_network,
)


def _sample(n: int, d: int, seed: int, grid: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """n random points in [0, 1)^d, or (grid) the distinct rows among n draws from {0, 1, 2}^d."""
    g = torch.Generator().manual_seed(seed)
    if grid:  # tie-heavy: every coordinate repeats, many projections are close
        X = torch.unique(torch.randint(0, 3, (n, d), generator=g), dim=0).to(torch.float64)
    else:
        X = torch.rand(n, d, generator=g, dtype=torch.float64)
    return X, torch.randn(X.shape[0], generator=g, dtype=torch.float64)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 200), d=st.integers(1, 30), seed=st.integers(0, 10**6), grid=st.booleans())
def test_theorem1_fits_within_tolerance_with_2n_plus_d_weights(n, d, seed, grid):
    X, y = _sample(n, d, seed, grid)
    net = theorem1_network(X, y)
    assert net.num_weights == 2 * X.shape[0] + d
    assert (interpolation_residuals(net, X, y) <= interpolation_tolerance(net, X)).all()


def test_tolerance_in_row_chunks_equals_the_whole_matrix():
    """The chunked bound is the bound of the whole n x n matrix, row for row."""
    X, y = _sample(300, 5, 3)
    net = theorem1_network(X, y)
    whole = interpolation_tolerance(net, X, rows_per_chunk=300)
    for rows in (1, 7, 128):
        assert torch.allclose(interpolation_tolerance(net, X, rows_per_chunk=rows), whole,
                              rtol=1e-12, atol=0)


def test_theorem1_on_image_shaped_input_few_hundred_points():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(300, 1, 8, 8, generator=g)
    y = torch.randn(300, generator=g, dtype=torch.float64)
    net = theorem1_network(X, y)
    res, tol = interpolation_residuals(net, X, y), interpolation_tolerance(net, X)
    assert net.num_weights == 2 * 300 + 64 and (res <= tol).all() and res.max() < 1e-6


def test_duplicate_rows_are_named():
    X, y = _sample(6, 3, 0)
    X[4] = X[1]
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        theorem1_network(X, y)


def test_nan_input_and_bad_depth_raise():
    X, y = _sample(5, 2, 0)
    X[2, 0] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        theorem1_network(X, y)
    with pytest.raises(ConfigError, match="k"):
        depth_k_network(*_sample(5, 2, 0), k=1)


def test_interleave_and_lemma1_matrix():
    x = torch.sort(torch.rand(40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)).values
    b = interleave(x)
    assert (b < x).all() and (x[:-1] < b[1:]).all()
    A = lemma1_matrix(x, b)
    assert torch.equal(A, A.tril()) and torch.linalg.matrix_rank(A) == 40
    eig = torch.linalg.eigvals(A).real
    assert torch.isclose(eig.min(), (x - b).min(), rtol=1e-9)


def test_construction_is_deterministic_per_seed():
    X, y = _sample(50, 4, 0)
    a, b = theorem1_network(X, y, seed=7), theorem1_network(X, y, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("k", [3, 5, 17])
def test_depth_k_fits_with_linear_weights_and_width_n_over_k(k):
    n, d = 240, 10
    X, y = _sample(n, d, k)
    net = depth_k_network(X, y, k)
    c = layer_counts(net)
    assert c.depth == k and sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == k
    assert c.width <= -(-n // (k - 2)) + 3
    assert c.weights <= 3 * n + d + 3 * k + 1
    assert (interpolation_residuals(net, X, y) <= interpolation_tolerance(net, X)).all()


def test_depth_k_forward_is_the_layers_alone():
    X, y = _sample(50, 4, 1)
    net = depth_k_network(X, y, 6)
    assert torch.equal(net(X), net.layers(X).flatten())
    assert layer_counts(net.layers) == layer_counts(net)


def test_depth_k_counts_scale():
    widths = {n: layer_counts(depth_k_network(*_sample(n, 5, 0), k=10)).width
              for n in (80, 160, 320)}
    assert widths[320] - 3 == 2 * (widths[160] - 3) == 4 * (widths[80] - 3)


def test_depth_two_is_theorem1():
    with pytest.raises(ConfigError, match="Theorem 1"):
        depth_k_network(*_sample(5, 2, 0), k=2)


def test_interleave_refuses_gaps_below_float_spacing():
    from genbench.theory import interleave
    x = torch.tensor([1.0, 1.0 + 2 ** -52, 2.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="too close"):
        interleave(x)
