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

from genbench.errors import ConfigError
from genbench.experiment import DataSpec, raw_splits
from genbench.studies import theory as study
from genbench.theory import (
    global_minima,
    interleave,
    interpolation_residuals,
    interpolation_tolerance,
    lemma1_matrix,
    non_minima,
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
                      depth_cases=tuple((n, 20, k) for n in (60, 240, 960) for k in (3, 4, 8, 15)),
                      minnorm_n=100, gd_steps=10_000, sgd_steps=30_000, hessian_minima=4),
    "full": Settings(examples=500, mnist_n=20_000,
                     depth_cases=tuple((n, 50, k) for n in (250, 1000, 4000, 16000)
                                       for k in (3, 4, 8, 16, 32, 62)),
                     minnorm_n=100, gd_steps=40_000, sgd_steps=120_000, hessian_minima=8),
}
# Corollary 1's constants, fixed from the construction's layer layout (genbench.theory.construction)
# before any run: width <= ceil(n / (k - 2)) + 3 <= 3n/k + n/k = 4n/k when n >= 4k (k/(k-2) <= 3
# for k >= 3, and ceil's 1 plus 3 carries <= n/k); nonzero weights <= 3n + d + 3k + 1 <=
# 4(n + d) when n >= 4k. So c = 4 for both, on cases with n >= 4k (checked below). k = 2 is
# Theorem 1 (Z.Th1): as explicit layers its n units each read all d inputs (n*d weights).
C_WIDTH = 4
C_WEIGHTS = 4
# Section 5's Hessian, with the log-cosh loss (zero exactly at interpolation, not quadratic):
# at the minima the Hessians are X^T X / n up to float64 rounding of an n-term sum
# (gamma_n ~ n * 2^-53 ~ 1e-14 relative for n = 100; 1e-12 leaves room for the autodiff order).
# The control moves each minimum along the row space to residual RMS 1, where
# sech^2 weights the points by ~0.4-1, so the Hessian must move by >= 1e-3 relative (nine orders
# above the agreement tolerance; the expected value, ~mean tanh^2(r) ~ 0.4, is recorded).
HESSIAN_AGREE = 1e-12
HESSIAN_CONTROL = 1e-3
CONTROL_RESIDUAL_RMS = 1.0
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


@dataclass(frozen=True)
class PropertyResult:
    """What the Theorem 1 property measured over its examples (never raised from inside)."""

    examples: int
    worst_ratio: float  # max residual / float64 bound over all examples
    worst_shape: tuple[int, int]  # (n, d) of the example with the worst ratio
    violations: int  # examples with ratio > 1
    bad_counts: int  # networks without exactly 2n + d weights
    refused: int  # distinct point sets the construction refused (ConfigError)
    refusal: str  # the first refusal's message


def _theorem1_property(examples: int, build=theorem1_network) -> PropertyResult:
    """Run the property over ``examples`` hypothesis point sets and return the measurements.

    The property body only measures: a violation (or a refused point set) is counted and ends in
    a failed check with its numbers in the record, not in an exception raised inside hypothesis
    (which the ledger could only record as an error)."""
    seen, worst, shape, bad = [0], [0.0], [(0, 0)], {"violations": 0, "counts": 0, "refused": 0}
    refusal = [""]

    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None)
    @hypothesis.given(_point_sets(), st.integers(0, 2**31 - 1))
    def prop(points, seed):
        X = torch.as_tensor(points, dtype=torch.float64)
        y = torch.as_tensor(np.random.default_rng(seed).normal(size=len(X)) * 10)
        seen[0] += 1
        try:
            net = build(X, y)
        except ConfigError as err:
            bad["refused"] += 1
            refusal[0] = refusal[0] or f"n={X.shape[0]}, d={X.shape[1]}: {err}"
            return
        ratio = float((interpolation_residuals(net, X, y) / interpolation_tolerance(net, X)).max())
        if not ratio <= worst[0]:
            worst[0], shape[0] = ratio, tuple(X.shape)
        bad["violations"] += not ratio <= 1.0
        bad["counts"] += net.num_weights != 2 * X.shape[0] + X.shape[1]

    prop()
    return PropertyResult(seen[0], worst[0], shape[0], bad["violations"], bad["counts"],
                          bad["refused"], refusal[0])


@pytest.mark.claim("Z.Th1.interpolation", source="Zhang et al. 2017, Theorem 1, Appendix C",
                   statement="a two-layer ReLU network with 2n+d weights fits any real targets "
                             "on any n distinct points in R^d")
def test_theorem1(claim, scale, device):
    s = SETTINGS[scale]
    prop = _theorem1_property(s.examples)
    claim.at_most("property: worst residual / float64 bound", prop.worst_ratio, 1.0)
    claim.at_most("property: examples with residual above the bound", prop.violations, 0)
    claim.at_most("property: networks without 2n+d weights", prop.bad_counts, 0)
    claim.at_most("property: distinct point sets the construction refused", prop.refused, 0)
    claim.note("property examples", prop.examples)
    claim.note("property: (n, d) of the worst example", str(prop.worst_shape))
    if prop.refusal:
        claim.note("property: first refusal", prop.refusal)

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
                property=f"{prop.examples} hypothesis point sets")
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
                             "function on n points",
                   paper="Corollary 1: depth k, width O(n/k), O(n+d) weights (no constants)")
def test_depth_k(claim, scale):
    s = SETTINGS[scale]
    small = [(n, k) for n, _, k in s.depth_cases if n < 4 * k]
    if small:
        raise ConfigError(f"Z.C1 cases {small} have n < 4k, outside the range where c = 4 holds")
    counts = study.depth_k_counts(s.depth_cases, seed=0)
    # all numbers below are read from the explicit nn.Linear layers (layer_counts)
    claim.at_most("max residual / float64 bound", max(c.max_ratio for c in counts), 1.0)
    claim.holds("every network has k Linear layers", all(c.depth == c.k for c in counts),
                measured=str(sorted({(c.k, c.depth) for c in counts})))
    claim.at_most(f"max width / (n/k)  [O(n/k), c = {C_WIDTH}]",
                  max(c.width / (c.n / c.k) for c in counts), C_WIDTH)
    claim.at_most(f"max nonzero weights / (n+d)  [O(n+d), c = {C_WEIGHTS}]",
                  max(c.weights / (c.n + c.d) for c in counts), C_WEIGHTS)
    claim.note("max hidden units / n", max(c.units / c.n for c in counts))
    claim.sizes(cases=f"{len(counts)} (n, d, k) with n up to {max(c.n for c in counts)}, "
                      f"k in {sorted({c.k for c in counts})}, n >= 4k")
    claim.seeds(0)
    claim.figure("zhang_c1_width", "Corollary 1: width vs n/k", "line", "n/k", "width",
                 {"measured": {"x": [c.n / c.k for c in counts], "y": [c.width for c in counts]},
                  f"{C_WIDTH} n/k": {"x": [c.n / c.k for c in counts],
                                     "y": [C_WIDTH * c.n / c.k for c in counts]}})
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
                             "at every global minimum (tested with log-cosh, a loss that is zero "
                             "at interpolation but not quadratic, so the Hessian varies elsewhere)")
def test_hessian(claim, scale, device):
    s = SETTINGS[scale]
    X, y = _least_squares_problem(scale, device)
    minima = global_minima(X, y, s.hessian_minima, seed=2)
    controls = non_minima(X, y, minima, CONTROL_RESIDUAL_RMS, seed=3)
    h = study.hessian_study(X, y, minima, controls, "logcosh")
    claim.at_most("max log-cosh loss at the minima", h.max_loss_at_minima, 1e-20)
    claim.at_least("min distance between minima", h.min_distance, 1.0)
    claim.at_most("max rel. Hessian difference between minima", h.minima_spread, HESSIAN_AGREE)
    claim.at_most("Hessian at a minimum vs X^T X / n (rel.)", h.minima_vs_gram, HESSIAN_AGREE)
    claim.at_least("control: min rel. Hessian difference, non-minimum vs minimum",
                   h.control_spread, HESSIAN_CONTROL)
    claim.note("control: min log-cosh loss at the non-minima", h.control_min_loss)
    square = study.hessian_study(X, y, minima, controls, "square")
    claim.note("square loss: rel. Hessian difference non-minimum vs minimum (constant Hessian)",
               square.control_spread)
    claim.sizes(train=f"{len(X)} MNIST images, d={X.shape[1]}", minima=s.hessian_minima,
                controls=f"{len(controls)} points at residual RMS {CONTROL_RESIDUAL_RMS}")
    claim.seeds(0, 2, 3)
    claim.conclude()
