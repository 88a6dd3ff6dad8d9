"""Zhang et al. (2017): Theorem 1, Lemma 1, Corollary 1 (Appendix C) and Section 5's linear facts.

The constructions are exact arithmetic claims, so both scales check the same statements; the
full scale uses more hypothesis examples, larger n and (on a GPU) the device's float64.
Tolerances: a construction "reproduces" a target when its residual is within the float64 error
bound of :func:`genbench.theory.interpolation_tolerance` (forward substitution + evaluation +
re-rounded projection, derived from Higham's bounds, not tuned), i.e. residual / bound <= 1.
"""

from dataclasses import dataclass

import hypothesis
import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from genbench.experiment import DataSpec, raw_splits
from genbench.studies import theory as study
from genbench.theory import (
    global_minima,
    interleave,
    interpolation_residuals,
    interpolation_tolerance,
    least_squares_hessian,
    least_squares_loss,
    lemma1_matrix,
    theorem1_network,
)


@dataclass(frozen=True)
class Settings:
    examples: int  # hypothesis examples per property
    mnist_n: int  # real images for Theorem 1 (random real targets)
    depth_cases: tuple[tuple[int, int, int], ...]  # (n, d, k) for Corollary 1
    minnorm_n: int  # MNIST images for the least-squares problem (d = 784 > n)
    gd_steps: int
    sgd_steps: int
    hessian_minima: int


# Smoke: 2,000 real MNIST images is the acceptance size (< 1 s); 60 hypothesis
# examples per property cover the strategies' corner cases (n=1, d=1, integer grids,
# near-duplicates) in a few seconds. Min-norm: n=100 standardized MNIST images (cond(X) ~ 38)
# so that 10^4 GD steps contract the error by (1 - 1/cond^2)^t ~ 1e-3; n=500 raw images have
# cond(X) ~ 1.3e4 and would need ~10^9 steps, on any machine (the rate, not the scale, binds).
SETTINGS = {
    "smoke": Settings(examples=60, mnist_n=2_000,
                      depth_cases=tuple((n, 20, k) for n in (60, 240, 960) for k in (2, 4, 8, 16)),
                      minnorm_n=100, gd_steps=10_000, sgd_steps=30_000, hessian_minima=4),
    "full": Settings(examples=500, mnist_n=20_000,
                     depth_cases=tuple((n, 50, k) for n in (250, 1000, 4000, 16000)
                                       for k in (2, 4, 8, 16, 32)),
                     minnorm_n=100, gd_steps=40_000, sgd_steps=120_000, hessian_minima=8),
}
MIN_NORM_TOL = 1e-2  # relative distance ||w - w*|| / ||w*|| that counts as "converged to w*"
CONTROL_MIN = 0.5  # a non-zero N(0, I) start keeps its null-space part: distance >> 1


def _point_sets():
    """Distinct point sets: Gaussian, tie-heavy integer grids, near-duplicates, d=1, n=1."""
    dims = st.integers(1, 6)
    gauss = st.tuples(st.integers(1, 40), dims, st.integers(0, 2**31 - 1)).map(
        lambda t: np.random.default_rng(t[2]).normal(size=(t[0], t[1])))
    grid = st.tuples(st.integers(1, 40), dims, st.integers(0, 2**31 - 1)).map(
        lambda t: np.unique(np.random.default_rng(t[2]).integers(-3, 4, size=(t[0], t[1])), axis=0))
    near = st.tuples(st.integers(1, 20), dims, st.integers(0, 2**31 - 1)).map(
        lambda t: _near_duplicates(*t))
    return st.one_of(gauss, grid, near)


def _near_duplicates(n: int, d: int, seed: int) -> np.ndarray:
    base = np.random.default_rng(seed).normal(size=(n, d))
    return np.unique(np.concatenate([base, base + 1e-6]), axis=0)


def _theorem1_property(examples: int) -> tuple[int, float, int]:
    """Run the property over ``examples`` samples; (examples run, worst ratio, bad weight counts)."""
    seen, worst, bad_counts = [0], [0.0], [0]

    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None)
    @hypothesis.given(_point_sets(), st.integers(0, 2**31 - 1))
    def prop(points, seed):
        X = torch.as_tensor(points, dtype=torch.float64)
        y = torch.as_tensor(np.random.default_rng(seed).normal(size=len(X)) * 10)
        net = theorem1_network(X, y)
        ratio = float((interpolation_residuals(net, X, y) / interpolation_tolerance(net, X)).max())
        seen[0] += 1
        worst[0] = max(worst[0], ratio)
        bad_counts[0] += net.num_weights != 2 * X.shape[0] + X.shape[1]
        assert ratio <= 1.0

    prop()
    return seen[0], worst[0], bad_counts[0]


@pytest.mark.claim("Z.Th1.interpolation", source="Zhang et al. 2017, Theorem 1, Appendix C",
                   statement="a two-layer ReLU network with 2n+d weights fits any real targets "
                             "on any n distinct points in R^d")
def test_theorem1(claim, scale, device):
    s = SETTINGS[scale]
    examples, worst, bad_counts = _theorem1_property(s.examples)
    claim.at_most("property: worst residual / float64 bound", worst, 1.0)
    claim.at_most("property: networks without 2n+d weights", bad_counts, 0)
    claim.note("property examples", examples)

    train, _ = raw_splits(DataSpec("mnist", source="fixture" if scale == "smoke" else "full"))
    X = study.flat_images(train)[: s.mnist_n].to(device)
    y = torch.randn(len(X), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    net = theorem1_network(X, y.to(device))
    residual = interpolation_residuals(net, X, y.to(device))
    tol = interpolation_tolerance(net, X)
    claim.at_most("mnist: max |c(x_i) - y_i|", residual.max(), float(tol.max()))
    claim.at_most("mnist: max residual / per-point bound", (residual / tol).max(), 1.0)
    claim.within("mnist: weights", net.num_weights, 2 * len(X) + X.shape[1], abs_tol=0)
    claim.sizes(train=f"{len(X):,} MNIST images (d={X.shape[1]}), N(0,1) targets",
                property=f"{examples} hypothesis point sets")
    claim.seeds(0)
    claim.conclude()


@pytest.mark.claim("Z.L1.interleaving", source="Zhang et al. 2017, Lemma 1",
                   statement="for interleaving b_1<x_1<...<b_n<x_n, A=[max(x_i-b_j,0)] is lower "
                             "triangular, full rank, smallest eigenvalue min_i(x_i-b_i)")
def test_lemma1(claim, scale, device):
    s = SETTINGS[scale]
    worst_upper, worst_eig, rank_def = [0.0], [0.0], [0]

    @hypothesis.settings(max_examples=s.examples, deadline=None, derandomize=True, database=None)
    # distinct values on a 1e-3 grid over [-1e3, 1e3]: gaps from 1e-3 (nearly tied) to 2e3
    @hypothesis.given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=60, unique=True))
    def prop(values):
        x = torch.sort(torch.tensor(values, dtype=torch.float64, device=device)).values / 1e3
        b = interleave(x)
        A = lemma1_matrix(x, b)
        eig = torch.linalg.eigvals(A).real
        lam = float((x - b).min())
        worst_upper[0] = max(worst_upper[0], float(torch.triu(A, 1).abs().max()))
        worst_eig[0] = max(worst_eig[0], abs(float(eig.min()) - lam) / lam)
        rank_def[0] += int(torch.linalg.matrix_rank(A)) != len(x)

    prop()
    claim.at_most("max |A_ij| above the diagonal", worst_upper[0], 0.0)
    claim.at_most("rank-deficient matrices", rank_def[0], 0)
    # eigvals of a triangular matrix are its diagonal up to LAPACK's backward error ~ n u
    claim.at_most("max rel. |lambda_min - min_i(x_i - b_i)|", worst_eig[0], 1e-12)
    claim.sizes(property=f"{s.examples} hypothesis sequences, n <= 60")
    claim.conclude()


@pytest.mark.claim("Z.C1.depth_k", source="Zhang et al. 2017, Corollary 1",
                   statement="depth k, width O(n/k) and O(n+d) weights suffice to fit any "
                             "function on n points")
def test_depth_k(claim, scale):
    s = SETTINGS[scale]
    counts = study.depth_k_counts(s.depth_cases, seed=0)
    # k - 1 hidden layers share the n ReLUs: width = ceil(n/(k-1)) + carries, and
    # n/(k-1) <= 2n/k, so an affine fit of width on n/(k-1) is the O(n/k) statement
    width = study.line_fit([c.n / (c.k - 1) for c in counts], [c.width for c in counts])
    weights = study.line_fit([2 * c.n + c.d for c in counts], [c.weights for c in counts])
    claim.at_most("max residual / float64 bound", max(c.max_ratio for c in counts), 1.0)
    claim.holds("every depth equals k", all(c.depth == c.k for c in counts))
    # O(n/k): width is affine in n/k with R^2 ~ 1 (ceil makes it not exactly linear)
    claim.at_least("width vs n/(k-1): R^2", width.r2, 0.99)
    claim.in_interval("width vs n/(k-1): slope", width.slope, 0.5, 2.0)
    # the O(n/k) bound itself: width <= 2n/k + 4 (n/(k-1) <= 2n/k, ceil adds 1, carries 3)
    claim.at_most("max width / (2n/k + 4)", max(c.width / (2 * c.n / c.k + 4) for c in counts), 1.0)
    claim.at_least("weights vs 2n+d: R^2", weights.r2, 0.999)
    claim.in_interval("weights vs 2n+d: slope", weights.slope, 0.5, 2.0)
    claim.sizes(cases=f"{len(counts)} (n, d, k) with n up to {max(c.n for c in counts)}")
    claim.figure("zhang_c1_width", "Corollary 1: width vs n/k", "line", "n/k", "width",
                 {"measured": {"x": [c.n / c.k for c in counts], "y": [c.width for c in counts]}})
    claim.conclude()


def _least_squares_problem(scale: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 5's linear least squares with n < d: the first ``minnorm_n`` MNIST images
    (per-image standardized, float64) and N(0, 1) targets drawn with seed 0."""
    train, _ = raw_splits(DataSpec("mnist", source="fixture" if scale == "smoke" else "full"))
    X = study.standardized_images(train)[: SETTINGS[scale].minnorm_n].to(device)
    y = torch.randn(len(X), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return X, y.to(device)


@pytest.mark.claim("Z.S5.sgd_min_norm", source="Zhang et al. 2017, Section 5, Eq. (3)",
                   statement="SGD (or GD) on least squares started at w=0 converges to the "
                             "minimum-norm interpolant X^T(XX^T)^-1 y")
def test_sgd_min_norm(claim, scale, device):
    s = SETTINGS[scale]
    X, y = _least_squares_problem(scale, device)
    runs, cond = study.min_norm_runs(X, y, s.gd_steps, s.sgd_steps, seed=1)
    for r in runs:
        name = f"{r.method} from w={'0' if r.start == 'zero' else 'N(0,I)'}: ||w - w*||/||w*||"
        if r.start == "zero":
            claim.at_most(name, r.distance, MIN_NORM_TOL)
        else:
            claim.at_least(name, r.distance, CONTROL_MIN)
        claim.note(f"{r.method}/{r.start}: final loss", r.final_loss)
    claim.note("cond(X)", cond)
    claim.sizes(train=f"{len(X)} MNIST images, d={X.shape[1]}, per-image standardized")
    claim.seeds(0, 1)
    claim.conclude()


@pytest.mark.claim("Z.S5.hessian", source="Zhang et al. 2017, Section 5",
                   statement="for a linear model the Hessian of the empirical loss is the same "
                             "at every global minimum")
def test_hessian(claim, scale, device):
    s = SETTINGS[scale]
    X, y = _least_squares_problem(scale, device)
    minima = global_minima(X, y, s.hessian_minima, seed=2)
    H = [least_squares_hessian(X, y, w) for w in minima]
    ref = H[0]
    spread = max(float((h - ref).abs().max()) for h in H) / float(ref.abs().max())
    claim.at_most("max loss at the minima", max(float(least_squares_loss(w, X, y.to(device)))
                                                 for w in minima), 1e-20)
    claim.at_least("min distance between minima", float(torch.cdist(minima, minima)
                                                        .fill_diagonal_(float("inf")).min()), 1.0)
    claim.at_most("max rel. Hessian difference between minima", spread, 1e-12)
    claim.within("Hessian vs X^T X / n (rel.)",
                 float((ref - X.T @ X / len(X)).abs().max() / ref.abs().max()), 0.0, abs_tol=1e-12)
    claim.sizes(train=f"{len(X)} MNIST images, d={X.shape[1]}", minima=s.hessian_minima)
    claim.seeds(0, 2)
    claim.conclude()
