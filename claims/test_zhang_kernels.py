"""Zhang et al. (2017), Section 5 and Table 3: Gaussian-kernel interpolation generalizes.

Reading of Section 5 (the paper states neither the bandwidth nor the target encoding): Gaussian
kernel exp(-||x - x'||^2 / (2 sigma^2)) with sigma from the median heuristic, one-hot 0/1
targets, K alpha = Y solved exactly in float64 (full-scale MNIST: see below), pixels scaled to
[0, 1]; "norm" is the RKHS norm sqrt(tr(alpha^T K alpha)) (= ||w|| of the min-norm solution of
Xw = y in feature space).
Norms scale with sigma and the encoding, so the paper's 220 / 390 are recorded next to ours
but only their ORDER (Gabor > raw while the error drops) is checked.

Smoke scale (fixtures: MNIST 4,000 / 2,000, CIFAR-10 4,000 / 1,000) cannot reach the paper's
60,000 / 50,000 training images, so it measures the learning curve at seven n, fits
err ~ a n^-b in log-log space and checks that the paper's number lies in the 95% interval of
the fit's extrapolation to the paper's n (a t interval from the curve's own scatter). An
interval that is too wide tests nothing (the old four-point Gabor curve gave [0.03%, 1.4%]
around 0.6%), so the extrapolation must also resolve a factor of 2: high / low <= 4 (fixed
before the run: a paper value off by 2x either way must be able to fall outside). Orderings are
checked with 95% Clopper-Pearson intervals of the test errors (they must not overlap).

Full scale runs the paper's n (MNIST in float32 with a stated jitter, so that 60,000 images fit
in 24 GiB, and checked against float64 at n = 30,000; see SETTINGS) and compares the paper's
value with the error measured at that n: the paper's number must lie in the 99% Clopper-Pearson
interval of the measured error (99% because five Table 3 numbers are tested; ~5% family-wise). Deviation: 8,000 random
filters instead of the paper's 32,000 (see SETTINGS; stated in the record). CIFAR-10 raw pixels
stay float64 and stop at n = 48,000, the largest round n that fits in 20 GiB, so their Table 3
row is the smoke-style extrapolation to 50,000 (the n is in the record); the random-conv rows
reach the paper's 50,000 in float32, checked against float64 at n = 25,000.
"""

from dataclasses import dataclass

import pytest
import torch

from genbench.experiment import DataSpec
from genbench.papers.zhang import SECTION5, TABLE3
from genbench.stats import error_interval
from genbench.studies import theory as study
from genbench.theory import KernelPrecision

# the paper's numbers, written once in genbench.papers.zhang (Table 3, Section 5)
PAPER = {key: row.test_error for key, row in TABLE3.items()} | {
    "norm_raw": SECTION5.norm_mnist_raw, "norm_gabor": SECTION5.norm_mnist_gabor}
PAPER_N = {row.dataset: row.n for row in TABLE3.values()}
PAPER_FILTERS = SECTION5.random_filters
RESOLVE = 4.0  # smoke: the extrapolation's 95% interval must satisfy high / low <= 4 (a 2x miss shows)
FULL_LEVEL = 0.99  # full: Clopper-Pearson level of the measured error at the paper's n
L2 = 0.1  # the paper does not give its l2 coefficient; 0.1 = 10% of the kernel's diagonal
# full: a lower precision may move the test error at precision_check_n by at most 0.1 points (10
# of 10,000 images), a third of the half-width of the 99% interval around the paper's 1.2%
# (+-0.29 points), so it cannot decide the comparison with the paper
PRECISION_SHIFT = 0.001
# the same rule for CIFAR-10's random-conv rows (1,000 test images): the 99% interval around the
# paper's 17% is +-3.06 points, a third of it 1.0 point (10 of 1,000 images); fixed before any
# float32 CIFAR-10 run
CONV_PRECISION_SHIFT = 0.01


@dataclass(frozen=True)
class Settings:
    source: str
    mnist_ns: tuple[int, ...]
    cifar_ns: tuple[int, ...]
    conv_ns: tuple[int, ...]  # random conv features: the training images they are computed for
    num_filters: int  # random Coates-Ng filters (the paper: 32,000)
    num_patches: int
    fit_any_n: int
    wrong_test: tuple[int, int]  # (train, test) points for the wrong-test-labels norm
    mnist_precision: KernelPrecision  # of every MNIST solve (Table 3's curves and the norms)
    precision_check_n: int | None  # MNIST n solved in float64 too, to measure what precision moves
    conv_dtype: str = "float64"  # how CIFAR-10's random-conv features are stored (FeatureSpec)
    conv_precision: KernelPrecision = KernelPrecision()  # of every random-conv solve
    conv_check_n: int | None = None  # random-conv n solved in float64 too (as precision_check_n)


# Smoke: seven n up to the fixture's 4,000 training images (a 15x extrapolation to 60,000; with
# four points the t interval has 2 degrees of freedom, t = 4.3, and resolves nothing); 64 random filters (256 features) because feature extraction is
# the cost on 2 cores: enough to show that random conv features beat pixels, not to reach 17%.
# Full: the paper's n; 8,000 filters (32,000 features) because kernel_interpolate holds the
# features in float64 next to the 50,000^2 kernel: 128,000 features would not fit in 80 GB.
# Full MNIST solves in float32 with a jitter of 1e-4 on the unit diagonal, on every device, so
# that the paper's n = 60,000 fits in 14.4 GB (float64: 28.8 GB, beyond a 24 GiB machine), and
# measures at n = 30,000, where float64 fits, what that moves for raw pixels and for Gabor
# features (PRECISION_SHIFT). Why 1e-4: float32 rounds at 6e-8, and a factorization of order
# 60,000 accumulates about sqrt(n) = 245 times that (1.5e-5); the Gabor kernel is worse
# conditioned than the raw one. History: the first full run used 1e-5, chosen from raw pixels
# only, and ended in an error, the float32 Cholesky of the Gabor kernel at n = 30,000 breaking
# down at pivot 21,096 (docs/results/cpu-paper-scale-2026-12-03.md). Measured against float64
# (10,000 test images, 2026-12-03), before the second full run and without looking at the paper's
# comparison: raw, 1e-4 changed 4 predictions at n = 10,000 and 10 at 30,000 (1.82% against
# 1.85%); Gabor, 1e-4 changed 7 at n = 20,000 (0.71% against 0.73%) and 7 at 30,000 (0.57%
# against 0.62%), where 1e-5 broke down.
# Full CIFAR-10 (decided 2026-12-03, before any float32 CIFAR-10 run; measurements in
# docs/results/cifar-kernel-precision-2026-12-03.json, float32 against float64 only): raw pixels
# are sensitive to float32 (a jitter of 1e-5 changed 8 of 1,000 test predictions at n = 10,000
# and 20,000, 1e-4 changed 20 and 32), so they stay float64, and n stops at 48,000: the largest
# thousand whose float64 kernel (18.4 GB) fits in 20 GiB next to the cached pixels of all 51,000
# images (1.25 GB; plan.largest_kernel_n gives 49,087 counting only the first n). Random-
# conv features moved 1 of 1,000 at n = 10,000 with either jitter; they are computed in float32
# anyway, so they are stored in float32 (6.5 GB for 51,000 images instead of 13) and solved in
# float32 with the MNIST rows' jitter of 1e-4 (n = 50,000 is close to MNIST's 60,000, where 1e-5
# broke down for the worse-conditioned Gabor kernel), which puts the paper's n = 50,000 within
# 20 GiB; the run checks that against float64 at n = 25,000 (CONV_PRECISION_SHIFT).
SETTINGS = {
    "smoke": Settings("fixture", (250, 500, 1_000, 1_500, 2_000, 3_000, 4_000),
                      (250, 500, 1_000, 1_500, 2_000, 3_000, 4_000), (500, 1_000, 2_000), 64,
                      10_000, 2_000, (2_000, 1_000), KernelPrecision(), None),
    "full": Settings("full", (7_500, 15_000, 30_000, 60_000), (6_250, 12_500, 25_000, 48_000),
                     (6_250, 12_500, 25_000, 50_000), 8_000, 400_000, 10_000, (50_000, 10_000),
                     KernelPrecision("float32", jitter=1e-4), 30_000, conv_dtype="float32",
                     conv_precision=KernelPrecision("float32", jitter=1e-4), conv_check_n=25_000),
}


def _spec(s: Settings, dataset: str, kind: str = "raw") -> study.FeatureSpec:
    data = DataSpec(dataset, source=s.source)
    if kind == "random_conv":  # features only for the images the curve uses (the cost on a CPU)
        data = DataSpec(dataset, source=s.source, n_train=max(s.conv_ns))
        return study.FeatureSpec(data, kind, num_filters=s.num_filters, num_patches=s.num_patches,
                                 dtype=s.conv_dtype)
    return study.FeatureSpec(data, kind)


def _record_curve(claim, scale, label, fits, law, paper):
    """Checks and notes of one learning curve. Smoke: the paper's error inside the power-law
    extrapolation, which must resolve a factor of 2. Full: the curve reaches the paper's n, and
    the paper's error must lie in the binomial interval of the error measured there."""
    if scale == "full" and fits[-1].n == law.target_n:
        lo, hi = error_interval(fits[-1].test_errors, fits[-1].n_test, FULL_LEVEL)
        claim.in_interval(f"{label}: paper's error within the {FULL_LEVEL:.0%} interval of the "
                          f"error measured at n={fits[-1].n}", paper, lo, hi, paper=paper)
        claim.note(f"{label}: measured error at n={fits[-1].n}", fits[-1].test_error)
    else:
        claim.at_most(f"{label}: extrapolation resolves 2x (95% interval high / low)",
                      law.high / law.low, RESOLVE)
        claim.in_interval(f"{label}: paper's error within the power-law 95% interval at "
                          f"n={law.target_n}", paper, law.low, law.high, paper=paper)
    claim.note(f"{label}: curve", {"n": [f.n for f in fits], "test_error": [f.test_error for f in fits],
                                   "bandwidth": fits[-1].bandwidth})
    claim.note(f"{label}: power law", {"a": law.a, "b": law.b, "r2": law.r2,
                                       "predicted": law.predicted, "low": law.low, "high": law.high})


def _check_precision(claim, s: Settings, dev: str) -> None:
    """The MNIST solves' precision in the record, and (full) what it moves at an n where float64
    fits, for raw pixels and Gabor features alike (their kernels condition differently): each
    test error may shift by at most PRECISION_SHIFT."""
    claim.note("MNIST solve precision", {"dtype": s.mnist_precision.dtype,
                                         "jitter": s.mnist_precision.jitter})
    for kind in ("raw", "gabor"):
        _precision_gap(claim, kind, _spec(s, "mnist", kind), s.precision_check_n,
                       s.mnist_precision, PRECISION_SHIFT, dev)


def _precision_gap(claim, label: str, spec: study.FeatureSpec, n: int | None,
                   p: KernelPrecision, bound: float, dev: str) -> None:
    """What a lower precision moves at n, where float64 fits too (nothing when n is None)."""
    if n is None:
        return
    gap = study.precision_gap(spec, n, p, dev)
    claim.at_most(f"{label}: {p.dtype} + jitter {p.jitter:g} against float64 at n={gap.n:,}: "
                  "test error shift", abs(gap.error - gap.exact_error), bound)
    claim.note(f"{label}: precision check", vars(gap) | {"precision": f"{p.dtype}, jitter {p.jitter:g}"})


@pytest.mark.claim("Z.S5.kernel_fit_any", source="Zhang et al. 2017, Section 5",
                   statement="solving K alpha = y fits any labeling exactly, random labels included")
def test_kernel_fit_any(claim, scale, device):
    s, dev = SETTINGS[scale], str(device)
    for dataset in ("mnist", "cifar10"):
        X, y, _, _ = study.features(_spec(s, dataset), dev)
        X, y = X[: s.fit_any_n], y[: s.fit_any_n]
        random = torch.randint(10, y.shape, generator=torch.Generator().manual_seed(0)).to(y.device)
        for name, labels in (("true", y), ("random", random)):
            err, norm = study.fit_labels(X, labels, dev)
            claim.at_most(f"{dataset}, {name} labels: training error", err, 0.0)
            claim.note(f"{dataset}, {name} labels: norm", norm)
    claim.sizes(train=f"{s.fit_any_n:,} MNIST and {s.fit_any_n:,} CIFAR-10 images")
    claim.seeds(0)
    claim.conclude()


@pytest.mark.claim("Z.T3.kernel_mnist", source="Zhang et al. 2017, Table 3",
                   statement="Gaussian-kernel interpolation on raw MNIST: 1.2% test error; with "
                             "Gabor-filter preprocessing 0.6%",
                   paper="Table 3: MNIST none 1.2%, gabor filters 0.6% (n = 60,000)",
                   xfail={"smoke": "Gabor learning curve on the 4,000-image fixture (n = 250 to "
                                   "4,000): its power-law 95% interval at n = 60,000 lies below "
                                   "the paper's 0.6%"})
def test_kernel_mnist(claim, scale, device):
    s, dev = SETTINGS[scale], str(device)
    curves = {}
    for kind, key in (("raw", "mnist_raw"), ("gabor", "mnist_gabor")):
        fits, law = study.learning_curve(_spec(s, "mnist", kind), s.mnist_ns, PAPER_N["mnist"],
                                         device=dev, precision=s.mnist_precision)
        _record_curve(claim, scale, kind, fits, law, PAPER[key])
        curves[kind] = fits
    _check_precision(claim, s, dev)
    raw, gabor = curves["raw"][-1], curves["gabor"][-1]
    raw_ci = error_interval(raw.test_errors, raw.n_test)
    gabor_ci = error_interval(gabor.test_errors, gabor.n_test)
    claim.at_most(f"Gabor beats raw at n={raw.n}: Gabor's upper 95% bound below raw's lower",
                  gabor_ci[1], raw_ci[0])
    claim.note("test error intervals (95%)", {"raw": raw_ci, "gabor": gabor_ci})
    claim.sizes(train=f"{s.mnist_ns[-1]:,} MNIST images (curve {list(s.mnist_ns)})",
                test=f"{raw.n_test:,} images")
    claim.figure("zhang_t3_mnist", "Kernel interpolation on MNIST: learning curves", "line",
                 "training images", "test error",
                 {k: {"x": [f.n for f in v], "y": [f.test_error for f in v]} for k, v in curves.items()},
                 logx=True, logy=True)
    claim.conclude()


@pytest.mark.claim("Z.T3.kernel_cifar", source="Zhang et al. 2017, Table 3 and Section 5",
                   statement="Gaussian kernel on CIFAR-10 pixels: 46% test error; on random conv-net "
                             "features: 17%; l2 regularization on top: 15%",
                   paper="Table 3 / Section 5: CIFAR-10 none 46%, random conv-net (32,000 "
                         "random filters) 17%, + l2 15% (n = 50,000)",
                   xfail={"smoke": "raw-pixel learning curve on the 4,000-image fixture (n = 250 "
                                   "to 4,000): its power-law 95% interval at n = 50,000 lies above "
                                   "the paper's 46%"})
def test_kernel_cifar(claim, scale, device):
    s, dev = SETTINGS[scale], str(device)
    raw_fits, raw_law = study.learning_curve(_spec(s, "cifar10"), s.cifar_ns, PAPER_N["cifar10"],
                                             device=dev)
    _record_curve(claim, scale, "raw", raw_fits, raw_law, PAPER["cifar_raw"])
    conv_spec = _spec(s, "cifar10", "random_conv")
    conv_fits, conv_law = study.learning_curve(conv_spec, s.conv_ns, PAPER_N["cifar10"],
                                               device=dev, precision=s.conv_precision)
    claim.note("random conv: curve", {"n": [f.n for f in conv_fits],
                                      "test_error": [f.test_error for f in conv_fits]})
    claim.note("random conv: power law (our filter count, not the paper's 32,000)",
               {"b": conv_law.b, "predicted": conv_law.predicted, "low": conv_law.low,
                "high": conv_law.high})
    p = s.conv_precision
    claim.note("random conv: features and solve precision",
               {"features": s.conv_dtype, "dtype": p.dtype, "jitter": p.jitter})
    _precision_gap(claim, "random conv", conv_spec, s.conv_check_n, p, CONV_PRECISION_SHIFT, dev)
    conv, n_both = conv_fits[-1], max(set(s.cifar_ns) & set(s.conv_ns))  # both curves hold n_both
    raw_at, conv_at = (study.kernel_fit(_spec(s, "cifar10"), n_both, 0.0, dev),
                       study.kernel_fit(conv_spec, n_both, 0.0, dev, p))
    l2 = study.kernel_fit(conv_spec, conv.n, L2, dev, p)
    raw_ci = error_interval(raw_at.test_errors, raw_at.n_test)
    conv_ci = error_interval(conv_at.test_errors, conv_at.n_test)
    claim.at_most(f"random conv features beat pixels at n={n_both} (upper 95% < lower 95%)",
                  conv_ci[1], raw_ci[0])
    claim.at_most("l2 regularization does not raise the error", l2.test_error, conv.test_error)
    claim.note("test errors at the largest n", {"raw": raw_fits[-1].test_error, "raw_n": raw_fits[-1].n,
                                                "conv": conv.test_error, "conv_l2": l2.test_error,
                                                "conv_n": conv.n, "l2": L2})
    claim.note(f"test error intervals (95%; raw and conv at n={n_both:,}, conv + l2 at "
               f"n={conv.n:,})", {"raw": raw_ci, "conv": conv_ci,
                                  "conv_l2": error_interval(l2.test_errors, l2.n_test)})
    if conv.n == PAPER_N["cifar10"]:  # full scale: the paper's n
        for name, fit, key in (("conv", conv, "cifar_conv"), ("conv + l2", l2, "cifar_conv_l2")):
            lo, hi = error_interval(fit.test_errors, fit.n_test, FULL_LEVEL)
            claim.in_interval(f"{name}: paper's error within the {FULL_LEVEL:.0%} interval of the "
                              f"error measured at n={fit.n}", PAPER[key], lo, hi, paper=PAPER[key])
    claim.note("deviation: random filters", f"{s.num_filters:,} (paper: {PAPER_FILTERS:,}); "
               "full: 32,000 filters = 128,000 features for 51,000 images (26 GB even in float32) "
               "next to the 50,000^2 kernel (10 GB) exceed a 24 GiB machine; smoke: feature "
               "extraction is the CPU cost")
    claim.sizes(train=f"{s.cifar_ns[-1]:,} CIFAR-10 images (raw pixels), {conv.n:,} (random conv)",
                test=f"{conv.n_test:,} images",
                filters=f"{s.num_filters} random filters ({4 * s.num_filters} features)")
    claim.seeds(0)
    claim.figure("zhang_t3_cifar", "Kernel interpolation on CIFAR-10: learning curves", "line",
                 "training images", "test error",
                 {"raw": {"x": [f.n for f in raw_fits], "y": [f.test_error for f in raw_fits]},
                  "random conv": {"x": [f.n for f in conv_fits], "y": [f.test_error for f in conv_fits]}},
                 logx=True, logy=True)
    claim.conclude()


@pytest.mark.claim("Z.S5.norm_not_predictive", source="Zhang et al. 2017, Section 5",
                   statement="min-norm solution's norm ~220 on raw MNIST and ~390 with Gabor "
                             "preprocessing while test error halves; fitting wrong test labels too "
                             "gives a much larger norm")
def test_norm_not_predictive(claim, scale, device):
    s, dev = SETTINGS[scale], str(device)
    n = s.mnist_ns[-1]
    raw = study.kernel_fit(_spec(s, "mnist"), n, 0.0, dev, s.mnist_precision)  # as Z.T3.kernel_mnist
    gabor = study.kernel_fit(_spec(s, "mnist", "gabor"), n, 0.0, dev, s.mnist_precision)
    claim.at_least("norm: Gabor / raw (> 1: the better model has the larger norm)",
                   gabor.norm / raw.norm, 1.0, paper=PAPER["norm_gabor"] / PAPER["norm_raw"])
    claim.at_most("test error: Gabor / raw (< 1)", gabor.test_error / raw.test_error, 1.0,
                  paper=PAPER["mnist_gabor"] / PAPER["mnist_raw"])
    claim.note("norms (paper: 220 raw, 390 Gabor at n=60,000, bandwidth unstated)",
               {"raw": raw.norm, "gabor": gabor.norm, "bandwidth_raw": raw.bandwidth,
                "bandwidth_gabor": gabor.bandwidth, "n": n})
    wrong = study.wrong_test_label_norms(_spec(s, "mnist"), *s.wrong_test, seed=0, device=dev,
                                         precision=s.mnist_precision)
    _check_precision(claim, s, dev)
    # "much larger": at least 1.5x the train-only min-norm solution (fixed in advance: the
    # paper gives no number; true test labels added to the system must stay well below it)
    claim.at_most("fit with wrong test labels: training error", wrong.train_error_wrong, 0.0)
    claim.at_least("norm(train + wrong test) / norm(train only)",
                   wrong.with_wrong_test / wrong.train_only, 1.5)
    claim.at_least("norm(train + wrong test) / norm(train + true test)",
                   wrong.with_wrong_test / wrong.with_true_test, 1.5)
    claim.note("wrong-test norms", vars(wrong))
    claim.sizes(train=f"{n:,} MNIST images", wrong_test=f"{s.wrong_test[0]:,} train + "
                f"{s.wrong_test[1]:,} test images with wrong labels")
    claim.seeds(0)
    claim.conclude()

