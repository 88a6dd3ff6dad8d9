"""Zhang et al. (2017), Sections 2.2, 4, 5 and Appendix C: the compositions the theory claims share.

The constructions and solvers live in :mod:`genbench.theory`; this module strings them together
for the claims: weight/width counts of the Corollary 1 networks with a least-squares fit, GD/SGD
to the minimum-norm solution with its control, kernel interpolation on flat images or fixed
features with learning curves and power-law extrapolation, and the Rademacher study.

Data always comes from :func:`genbench.experiment.raw_splits` (uint8 images); kernel methods use
them as flat float64 matrices scaled to [0, 1] (the paper's "no preprocessing"). Expensive
intermediate results (feature maps, kernel fits) are cached per process with ``lru_cache`` keyed
by frozen specs, so claims that share a fit (Table 3 and the norm claim) solve it once.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from genbench.analysis import rademacher
from genbench.data import ArrayDataset, preprocess
from genbench.errors import ConfigError
from genbench.experiment import DataSpec, Runs, raw_splits, train_runs
from genbench.theory import (
    KERNEL_DTYPES,
    DepthKNetwork,
    KernelPrecision,
    depth_k_network,
    fit_random_conv,
    gabor_features,
    gd_least_squares,
    interpolation_residuals,
    interpolation_tolerance,
    kernel_interpolate,
    kernel_norm,
    layer_counts,
    least_squares_loss,
    logcosh_loss,
    loss_hessian,
    min_norm_solution,
)

FEATURES = ("raw", "gabor", "random_conv")


# ------------------------------------------------------------------ statistics helpers


@dataclass(frozen=True)
class LineFit:
    """Least-squares line y = intercept + slope x with its R^2."""

    slope: float
    intercept: float
    r2: float


def line_fit(x: Sequence[float], y: Sequence[float]) -> LineFit:
    """Ordinary least squares of y on x (scipy.stats.linregress)."""
    r = stats.linregress(np.asarray(x, float), np.asarray(y, float))
    return LineFit(slope=float(r.slope), intercept=float(r.intercept), r2=float(r.rvalue**2))


@dataclass(frozen=True)
class PowerLaw:
    """err ~ a n^-b fitted in log-log space, and its extrapolation to ``target_n``.

    ``low``/``high`` is the ``confidence`` interval of the fitted mean log error at target_n
    (t distribution with m - 2 degrees of freedom, m the number of curve points): the spread
    that the curve's own scatter allows for the extrapolation.
    """

    a: float
    b: float
    r2: float
    target_n: int
    predicted: float
    low: float
    high: float


def power_law(ns: Sequence[int], errs: Sequence[float], target_n: int,
              confidence: float = 0.95) -> PowerLaw:
    """Fit log err = log a - b log n and extrapolate to ``target_n`` with its interval."""
    x, y = np.log(np.asarray(ns, float)), np.log(np.asarray(errs, float))
    m = len(x)
    if m < 3:
        raise ConfigError(f"ns: a power law with an interval needs >= 3 curve points, got {m}")
    r = stats.linregress(x, y)
    x0 = math.log(target_n)
    resid = y - (r.intercept + r.slope * x)
    s = math.sqrt(float(resid @ resid) / (m - 2))
    se = s * math.sqrt(1 / m + (x0 - x.mean()) ** 2 / float(((x - x.mean()) ** 2).sum()))
    t = float(stats.t.ppf(0.5 + confidence / 2, m - 2))
    mean = r.intercept + r.slope * x0
    return PowerLaw(a=math.exp(r.intercept), b=-float(r.slope), r2=float(r.rvalue**2),
                    target_n=target_n, predicted=math.exp(mean), low=math.exp(mean - t * se),
                    high=math.exp(mean + t * se))


# ------------------------------------------------------------------ Corollary 1 counts


@dataclass(frozen=True)
class DepthKCount:
    """One Corollary 1 network, counted from its explicit layers (:func:`layer_counts`)."""

    n: int
    d: int
    k: int
    width: int  # most units in a hidden layer
    depth: int  # Linear layers
    weights: int  # nonzero weight and bias entries
    units: int  # hidden units in all
    max_ratio: float  # max residual / float64 tolerance over the sample


def depth_k_count(net: DepthKNetwork, X: Tensor, y: Tensor, k: int) -> DepthKCount:
    """Count ``net`` from its layers and measure its worst residual against the float64 bound."""
    c = layer_counts(net)
    ratio = (interpolation_residuals(net, X, y) / interpolation_tolerance(net, X)).max()
    return DepthKCount(X.shape[0], X.reshape(X.shape[0], -1).shape[1], k, c.width, c.depth,
                       c.weights, c.units, float(ratio))


def depth_k_counts(cases: Sequence[tuple[int, int, int]], seed: int) -> list[DepthKCount]:
    """Build Corollary 1's network for each (n, d, k) on seeded Gaussian points and targets."""
    out = []
    for i, (n, d, k) in enumerate(cases):
        g = torch.Generator().manual_seed(seed + i)
        X = torch.randn(n, d, generator=g, dtype=torch.float64)
        y = torch.randn(n, generator=g, dtype=torch.float64)
        out.append(depth_k_count(depth_k_network(X, y, k), X, y, k))
    return out


# ------------------------------------------------------------------ data as flat matrices


def flat_images(ds: ArrayDataset) -> Tensor:
    """(N, C*H*W) float64 pixels scaled to [0, 1]: the paper's "no preprocessing"."""
    return ds.x.reshape(len(ds), -1).to(torch.float64) / 255.0


def standardized_images(ds: ArrayDataset) -> Tensor:
    """(N, C*H*W) float64 images after Zhang's per-image standardization (``preprocess.zhang``)."""
    return preprocess.zhang(ds.x).reshape(len(ds), -1).to(torch.float64)


def standardize_on(train: Tensor, *others: Tensor, dtype: torch.dtype = torch.float64
                   ) -> tuple[Tensor, ...]:
    """Per-feature standardization with the training split's mean and std, IN PLACE (the
    inputs are overwritten: random-conv features for 51,000 CIFAR-10 images are 6.5 GB in
    float32, and a copy would not fit next to the kernel), returned in ``dtype``. The arithmetic
    is in the inputs' dtype whatever ``dtype`` is, so float32 and float64 results hold the same
    values."""
    mu, sd = train.mean(0), train.std(0).clamp_min(1e-12)
    return tuple(t.sub_(mu).div_(sd).to(dtype) for t in (train, *others))


@dataclass(frozen=True)
class FeatureSpec:
    """Which images (``data``) through which fixed map (``kind``, see FEATURES).

    random_conv: ``num_filters`` random Coates-Ng filters (features 4x that), whitening from
    ``num_patches`` patches of the training images, filters drawn with ``seed``.

    ``dtype``: how the matrices are stored. float64 by default (an exact solve reads them as
    they are); float32 halves the memory and is what a float32 solve reads anyway, without a
    copy. Random-conv and Gabor features are computed in float32 either way, so for them the two
    dtypes hold the same values; raw pixels are scaled in float64 and rounded."""

    data: DataSpec
    kind: str = "raw"
    num_filters: int = 0
    num_patches: int = 100_000
    seed: int = 0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if self.kind not in FEATURES:
            raise ConfigError(f"FeatureSpec.kind={self.kind!r}; allowed: {FEATURES}")
        if self.dtype not in KERNEL_DTYPES:
            raise ConfigError(f"FeatureSpec.dtype={self.dtype!r}; allowed: {KERNEL_DTYPES}")
        if self.kind == "random_conv" and self.num_filters < 1:
            raise ConfigError("FeatureSpec.num_filters: random_conv needs >= 1 filter")


@functools.lru_cache(maxsize=8)
def features(spec: FeatureSpec, device: str = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(X_train, y_train, X_test, y_test) as ``spec.dtype`` matrices for kernel methods (cached)."""
    train, test = (s.to(device) for s in raw_splits(spec.data))
    dtype = getattr(torch, spec.dtype)
    if spec.kind == "raw":
        Xtr, Xte = flat_images(train).to(dtype), flat_images(test).to(dtype)
    elif spec.kind == "gabor":
        Xtr, Xte = (gabor_features(s.x.float() / 255.0).to(dtype) for s in (train, test))
    else:
        net = fit_random_conv(train.x, spec.num_filters, spec.seed, num_patches=spec.num_patches)
        Xtr, Xte = standardize_on(net.features(train.x), net.features(test.x), dtype=dtype)
    return Xtr, train.y, Xte, test.y


# ------------------------------------------------------------------ kernel interpolation


@dataclass(frozen=True)
class KernelFit:
    """One Gaussian-kernel solve on the first ``n`` training rows (``predictions``: the test
    set's predicted classes, to compare two precisions image by image)."""

    n: int
    reg: float
    train_error: float
    test_error: float
    test_errors: int
    n_test: int
    norm: float
    bandwidth: float
    seconds: float
    precision: KernelPrecision = KernelPrecision()
    predictions: Tensor | None = field(default=None, repr=False, compare=False)


def _train_fit(model, X: Tensor, y: Tensor) -> tuple[float, float]:
    """Training error and norm from one K alpha over the training points (the kernel rebuilt
    once: the norm's alpha^T K alpha reads the same scores the error does)."""
    scores = model.predict(X)
    wrong = int((scores.argmax(dim=1) != y.to(scores.device)).sum())
    return wrong / len(y), kernel_norm(model, scores)


EXACT = KernelPrecision()


def kernel_fit(spec: FeatureSpec, n: int, reg: float = 0.0, device: str = "cpu",
               precision: KernelPrecision = EXACT) -> KernelFit:
    """Solve (K + reg I) alpha = one-hot(y) on the first n training rows; errors and norm.

    The fixture and ``raw_splits`` subsets are class-balanced and shuffled, so the first n
    rows are a fair subsample (nested across n, as a learning curve should be). Cached on the
    normalized arguments: ``lru_cache`` alone keys ``f(s, n)`` and ``f(s, n, 0.0, "cpu", EXACT)``
    apart, and a miss here is a full solve (minutes at n = 25,000)."""
    return _kernel_fit(spec, int(n), float(reg), str(device), precision)


@functools.lru_cache(maxsize=32)
def _kernel_fit(spec: FeatureSpec, n: int, reg: float, device: str,
                precision: KernelPrecision) -> KernelFit:
    Xtr, ytr, Xte, yte = features(spec, device)
    if not 1 <= n <= len(ytr):
        raise ConfigError(f"n={n}: must be in [1, {len(ytr)}] for {spec.data.dataset}")
    start = time.perf_counter()
    model = kernel_interpolate(Xtr[:n], ytr[:n], reg=reg, num_classes=10, device=device,
                               dtype=precision.torch_dtype, jitter=precision.jitter)
    seconds = time.perf_counter() - start
    train_err, norm = _train_fit(model, Xtr[:n], ytr[:n])
    predictions = model.classify(Xte).cpu()
    wrong = int((predictions != yte.cpu()).sum())
    return KernelFit(n, reg, train_err, wrong / len(yte), wrong, len(yte), norm,
                     model.bandwidth, seconds, precision, predictions)


def learning_curve(spec: FeatureSpec, ns: Sequence[int], target_n: int, reg: float = 0.0,
                   device: str = "cpu", precision: KernelPrecision = EXACT
                   ) -> tuple[list[KernelFit], PowerLaw]:
    """Kernel fits at each n and the power law err ~ a n^-b extrapolated to ``target_n``."""
    fits = [kernel_fit(spec, n, reg, device, precision) for n in ns]
    return fits, power_law(ns, [f.test_error for f in fits], target_n)


@dataclass(frozen=True)
class PrecisionGap:
    """One n solved exactly (float64) and at a lower precision: how far the results move."""

    n: int
    precision: KernelPrecision
    exact_error: float
    error: float
    disagreements: int  # test images whose predicted class differs between the two
    n_test: int


def precision_gap(spec: FeatureSpec, n: int, precision: KernelPrecision,
                  device: str = "cpu") -> PrecisionGap:
    """Solve at n exactly and at ``precision`` (both cached): the evidence that a float32 +
    jitter solve at a larger n, where float64 does not fit, stands for the exact interpolant."""
    exact, low = kernel_fit(spec, n, 0.0, device), kernel_fit(spec, n, 0.0, device, precision)
    return PrecisionGap(n, precision, exact.test_error, low.test_error,
                        int((exact.predictions != low.predictions).sum()), exact.n_test)


def wrong_labels(y: Tensor, num_classes: int, seed: int) -> Tensor:
    """Every label replaced by a uniformly drawn *different* class (seeded)."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, y.shape, generator=g).to(y.device)
    return (y + shift) % num_classes


def fit_labels(X: Tensor, y: Tensor, device: str = "cpu", precision: KernelPrecision = EXACT
               ) -> tuple[float, float]:
    """Interpolate labels y on X; (training error, RKHS norm) of the solution."""
    model = kernel_interpolate(X, y, num_classes=10, device=device, dtype=precision.torch_dtype,
                               jitter=precision.jitter)
    return _train_fit(model, X, y)


@dataclass(frozen=True)
class WrongTestNorms:
    """Norms of min-norm interpolants: train only, train + true test, train + wrong test."""

    train_only: float
    with_true_test: float
    with_wrong_test: float
    train_error_wrong: float


def wrong_test_label_norms(spec: FeatureSpec, n_train: int, n_test: int, seed: int,
                           device: str = "cpu", precision: KernelPrecision = EXACT
                           ) -> WrongTestNorms:
    """Section 5's "force the data to fit random labels on the test data" experiment."""
    Xtr, ytr, Xte, yte = features(spec, device)
    X = torch.cat([Xtr[:n_train], Xte[:n_test]])
    y_true = torch.cat([ytr[:n_train], yte[:n_test]])
    y_wrong = torch.cat([ytr[:n_train], wrong_labels(yte[:n_test], 10, seed)])
    err_wrong, norm_wrong = fit_labels(X, y_wrong, device, precision)
    return WrongTestNorms(kernel_fit(spec, n_train, 0.0, device, precision).norm,
                          fit_labels(X, y_true, device, precision)[1], norm_wrong, err_wrong)


# ------------------------------------------------------------------ SGD -> minimum norm


@dataclass(frozen=True)
class MinNormRun:
    """Relative distance ||w - w*|| / ||w*|| of a GD/SGD run's final weights, and its loss."""

    method: str
    start: str
    steps: int
    distance: float
    final_loss: float


def min_norm_runs(X: Tensor, y: Tensor, gd_steps: int, sgd_steps: int, seed: int
                  ) -> tuple[list[MinNormRun], float]:
    """GD and SGD (batch 1) from w = 0, and both from a seeded N(0, I) start (the control).

    Returns the runs and cond(X) (the rate of convergence is governed by cond(X)^2)."""
    w_star = min_norm_solution(X, y)
    X64 = X.reshape(X.shape[0], -1).to(torch.float64)
    g = torch.Generator().manual_seed(seed)
    w0 = torch.randn(X64.shape[1], generator=g, dtype=torch.float64).to(X64.device)
    runs = []
    for start, init in (("zero", None), ("random", w0)):
        for method, steps, batch in (("gd", gd_steps, None), ("sgd", sgd_steps, 1)):
            r = gd_least_squares(X64, y, steps, w0=init, batch_size=batch, seed=seed)
            dist = float((r.w - w_star).norm() / w_star.norm())
            runs.append(MinNormRun(method, start, steps, dist, float(r.losses[-1])))
    s = torch.linalg.svdvals(X64)
    return runs, float(s[0] / s[-1])


# ------------------------------------------------------------------ Hessian at the minima


@dataclass(frozen=True)
class HessianStudy:
    """Hessians of one loss at global minima and at points away from them (relative max-entry
    differences, each against the Hessian at the first minimum H0)."""

    loss: str
    max_loss_at_minima: float
    min_distance: float  # smallest distance between two of the minima
    minima_spread: float  # max over minima of |H - H0|_max / |H0|_max
    minima_vs_gram: float  # |H0 - X^T X / n|_max / |H0|_max
    control_spread: float  # min over the non-minima of |H - H0|_max / |H0|_max
    control_min_loss: float  # smallest loss among the non-minima


def hessian_study(X: Tensor, y: Tensor, minima: Tensor, controls: Tensor,
                  loss: str = "logcosh") -> HessianStudy:
    """Section 5's "same Hessian at every global minimum", measured with autodiff Hessians."""
    H = [loss_hessian(loss, X, y, w) for w in minima]
    ref = H[0]
    scale = float(ref.abs().max())

    def rel(h: Tensor, other: Tensor) -> float:
        return float((h - other).abs().max()) / scale

    fn = {"square": least_squares_loss, "logcosh": logcosh_loss}[loss]
    dist = torch.cdist(minima, minima).fill_diagonal_(float("inf")).min() if len(minima) > 1 \
        else torch.tensor(float("nan"))
    return HessianStudy(
        loss=loss,
        max_loss_at_minima=max(float(fn(w, X, y)) for w in minima),
        min_distance=float(dist),
        minima_spread=max(rel(h, ref) for h in H),
        minima_vs_gram=rel(ref, X.T @ X / len(X)),
        control_spread=min(rel(loss_hessian(loss, X, y, v), ref) for v in controls),
        control_min_loss=min(float(fn(v, X, y)) for v in controls))


# ------------------------------------------------------------------ Rademacher complexity


@dataclass(frozen=True)
class RademacherStudy:
    """Estimates over K labelings: soft (2p - 1) and hard (sign) predictions, the control
    (the same networks scored against fresh, independent labelings) and the fit rates."""

    soft: float
    hard: float
    control: float
    fitted: int
    k_draws: int
    n: int
    train_acc: tuple[float, ...]


def two_class(ds: ArrayDataset, y: Tensor) -> ArrayDataset:
    """The images of ``ds`` with binary labels y in {0, 1} (num_classes 2)."""
    return replace(ds, y=y.to(device=ds.x.device, dtype=torch.int64), num_classes=2,
                   name=f"{ds.name}-binary")


def rademacher_study(train: ArrayDataset, runs: Runs, k_draws: int, seed: int,
                     device: torch.device | str = "cpu") -> RademacherStudy:
    """Train one network per random +-1 labeling of ``train`` (fit_many through train_runs).

    Each network h_k is scored on the training points against its own labeling sigma_k: the
    empirical Rademacher complexity with the supremum replaced by training (Section 2.2)."""
    if len(runs.seeds) != k_draws:
        raise ConfigError(f"runs.seeds: need one seed per labeling ({k_draws}), got {runs.seeds}")
    sigmas = rademacher.rademacher_labels(len(train), k_draws, seed, device=train.x.device)
    bits = (sigmas > 0).long()
    binary = two_class(train, bits[0])
    results = train_runs(runs, binary, binary, labels=bits, device=device)
    probs = torch.stack([r.test_probs.to(sigmas.device) for r in results])  # (K, n, 2)
    soft = rademacher.signed_prediction(probs)
    hard = torch.where(soft >= 0, 1.0, -1.0)
    fresh = rademacher.rademacher_labels(len(train), k_draws, seed + 10_000, device=sigmas.device)
    return RademacherStudy(
        soft=rademacher.empirical_rademacher(soft, sigmas),
        hard=rademacher.empirical_rademacher(hard, sigmas),
        control=rademacher.empirical_rademacher(hard, fresh),
        fitted=sum(r.fitted for r in results), k_draws=k_draws, n=len(train),
        train_acc=tuple(float((hard[i] == sigmas[i]).float().mean()) for i in range(k_draws)),
    )
