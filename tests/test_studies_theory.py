"""genbench.studies.theory: the statistics helpers, the compositions, and the claims' settings.

The full-scale settings of the theory claims only run on a GPU box, so they are constructed
and validated here (a typo in a DataSpec or TrainConfig fails in CI, not on the GPU run).
"""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from genbench.errors import ConfigError
from genbench.experiment import DataSpec
from genbench.studies import theory as study
from genbench.theory import (
    KernelPrecision,
    depth_k_network,
    global_minima,
    layer_counts,
    non_minima,
    theorem1_network,
)

CLAIMS = Path(__file__).resolve().parents[1] / "claims"


def _claim_module(name: str):
    spec = importlib.util.spec_from_file_location(name, CLAIMS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 10), st.floats(0.05, 1.5))
def test_power_law_recovers_exact_curves(a, b):
    ns = [500, 1000, 2000, 4000]
    law = study.power_law(ns, [a * n**-b for n in ns], 60_000)
    assert law.a == pytest.approx(a, rel=1e-9) and law.b == pytest.approx(b, rel=1e-9)
    assert law.predicted == pytest.approx(a * 60_000**-b, rel=1e-9)
    assert law.low == pytest.approx(law.predicted, rel=1e-6) == pytest.approx(law.high, rel=1e-6)


def test_power_law_interval_widens_with_scatter_and_needs_three_points():
    law = study.power_law([500, 1000, 2000, 4000], [0.12, 0.07, 0.06, 0.035], 60_000)
    assert law.low < law.predicted < law.high
    with pytest.raises(ConfigError, match="ns"):
        study.power_law([500, 1000], [0.1, 0.07], 60_000)


def test_line_fit_and_depth_k_counts_follow_n_over_k():
    counts = study.depth_k_counts([(n, 5, k) for n in (30, 90) for k in (3, 4, 7)], seed=0)
    assert all(c.max_ratio <= 1 and c.depth == c.k for c in counts)
    assert all(c.weights <= 3 * c.n + c.d + 3 * c.k + 1 for c in counts)  # the layout's count
    fit = study.line_fit([c.n / (c.k - 2) for c in counts], [c.width for c in counts])
    assert fit.r2 > 0.99 and fit.slope == pytest.approx(1.0, abs=0.1)


def _c1_verdict(counts, module) -> bool:
    """The Z.C1 claim's checks, with the claim module's constants."""
    return (max(c.max_ratio for c in counts) <= 1 and all(c.depth == c.k for c in counts)
            and max(c.width / (c.n / c.k) for c in counts) <= module.C_WIDTH
            and max(c.weights / (c.n + c.d) for c in counts) <= module.C_WEIGHTS)


def test_depth_k_claim_can_fail_on_perturbed_or_dense_networks():
    """Z.C1 passes on the construction, and fails (a) when one weight of a layer is perturbed
    (the residual leaves the float64 bound) and (b) on a network that fits but is not O(n + d):
    Theorem 1 as explicit layers (every unit reads all d inputs)."""
    module = _claim_module("test_zhang_theory")
    g = torch.Generator().manual_seed(0)
    n, d, k = 60, 20, 4
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    net = depth_k_network(X, y, k)
    assert _c1_verdict([study.depth_k_count(net, X, y, k)], module)

    with torch.no_grad():
        net.layers[-1].weight[0, 0] += 1e-6  # one output weight of the last block
    perturbed = study.depth_k_count(net, X, y, k)
    assert perturbed.max_ratio > 1 and not _c1_verdict([perturbed], module)

    t1 = theorem1_network(X, y)
    dense = torch.nn.Sequential(torch.nn.Linear(d, n, dtype=torch.float64), torch.nn.ReLU(),
                                torch.nn.Linear(n, 1, bias=False, dtype=torch.float64))
    with torch.no_grad():
        dense[0].weight.copy_(t1.a.expand(n, d))
        dense[0].bias.copy_(-t1.b)
        dense[2].weight.copy_(t1.w[None, :])
    fit = (dense(X).flatten() - y).abs().max()
    counts = layer_counts(dense)
    assert fit < 1e-6 and counts.weights == n * d + 2 * n
    assert counts.weights / (n + d) > module.C_WEIGHTS


def test_hessian_claim_can_fail_at_a_non_minimum():
    """Z.S5.hessian's agreement check fails when one of the "minima" is not a minimum, and the
    square loss (the old test) cannot tell a non-minimum at all: its control spread is 0."""
    module = _claim_module("test_zhang_theory")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 50, generator=g, dtype=torch.float64)
    y = torch.randn(20, generator=g, dtype=torch.float64)
    minima = global_minima(X, y, 3, seed=1)
    controls = non_minima(X, y, minima, 1.0, seed=2)
    ok = study.hessian_study(X, y, minima, controls, "logcosh")
    assert ok.minima_spread <= module.HESSIAN_AGREE and ok.control_spread >= module.HESSIAN_CONTROL
    near = non_minima(X, y, minima[:1], 1e-2, seed=3)  # residual RMS 0.01: barely off
    bad = study.hessian_study(X, y, torch.cat([minima[:2], near]), controls, "logcosh")
    assert bad.minima_spread > module.HESSIAN_AGREE
    assert study.hessian_study(X, y, minima, controls, "square").control_spread < 1e-12


def test_theorem1_property_reports_violations_as_numbers():
    """A construction that does not interpolate yields counted violations and the worst ratio
    (a failed check with numbers), not an exception raised inside the hypothesis property."""
    module = _claim_module("test_zhang_theory")

    def broken(X, y):
        net = theorem1_network(X, y)
        with torch.no_grad():
            net.w.add_(1e-3)
        return net

    def refusing(X, y):
        raise ConfigError("refused on purpose")

    bad = module._theorem1_property(10, build=broken)
    assert bad.examples == 10 and bad.violations > 0 and bad.worst_ratio > 1
    refused = module._theorem1_property(5, build=refusing)
    assert refused.refused == 5 and "on purpose" in refused.refusal


def test_wrong_labels_always_differ_and_are_seeded():
    y = torch.arange(1000) % 10
    w = study.wrong_labels(y, 10, seed=3)
    assert (w != y).all() and ((w >= 0) & (w < 10)).all()
    assert torch.equal(w, study.wrong_labels(y, 10, seed=3))


def test_min_norm_runs_reach_w_star_from_zero_only():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(10, 40, generator=g, dtype=torch.float64), torch.randn(10, generator=g,
                                                                               dtype=torch.float64)
    runs, cond = study.min_norm_runs(X, y, gd_steps=3000, sgd_steps=6000, seed=1)
    dist = {(r.method, r.start): r.distance for r in runs}
    assert dist["gd", "zero"] < 1e-6 and dist["sgd", "zero"] < 1e-4
    assert dist["gd", "random"] > 0.5 and dist["sgd", "random"] > 0.5 and cond > 1


def test_kernel_fit_on_fixture_interpolates_and_is_cached():
    spec = study.FeatureSpec(DataSpec("mnist"))
    fit = study.kernel_fit(spec, 300)
    assert fit.train_error == 0.0 and 0 < fit.test_error < 0.3 and fit.norm > 0
    assert study.kernel_fit(spec, 300) is fit
    assert study.kernel_fit(spec, 300, 0, "cpu", study.EXACT) is fit  # one entry, however called
    with pytest.raises(ConfigError, match="n="):
        study.kernel_fit(spec, 10**6)


def test_precision_gap_compares_a_lower_precision_with_float64_image_by_image():
    spec = study.FeatureSpec(DataSpec("mnist"))
    low = KernelPrecision("float32", jitter=1e-5)
    gap = study.precision_gap(spec, 500, low)
    exact, fit32 = study.kernel_fit(spec, 500), study.kernel_fit(spec, 500, precision=low)
    assert fit32.precision == low and exact.precision == study.EXACT
    assert (gap.exact_error, gap.error) == (exact.test_error, fit32.test_error)
    assert gap.disagreements == int((exact.predictions != fit32.predictions).sum())
    assert gap.disagreements <= 0.01 * gap.n_test  # float32 + 1e-5 barely moves a 500-point fit
    assert study.precision_gap(spec, 500, study.EXACT).disagreements == 0


def test_feature_spec_validates():
    with pytest.raises(ConfigError, match="kind"):
        study.FeatureSpec(DataSpec("mnist"), "sift")
    with pytest.raises(ConfigError, match="num_filters"):
        study.FeatureSpec(DataSpec("cifar10"), "random_conv")
    with pytest.raises(ConfigError, match="FeatureSpec.dtype"):
        study.FeatureSpec(DataSpec("mnist"), dtype="float16")


@pytest.mark.parametrize("kind", ["raw", "random_conv"])
def test_float32_features_hold_the_float64_values(kind):
    """Random-conv features are computed and standardized in float32, so storing them in float32
    loses nothing (the CIFAR-10 kernel rows rely on it); raw pixels are the float64 ones, rounded."""
    data = DataSpec("cifar10", n_train=300)
    specs = [study.FeatureSpec(data, kind, num_filters=4 * (kind == "random_conv"),
                               num_patches=2_000, dtype=dtype) for dtype in ("float64", "float32")]
    wide, narrow = study.features(specs[0]), study.features(specs[1])
    for a, b in ((wide[0], narrow[0]), (wide[2], narrow[2])):
        assert a.dtype == torch.float64 and b.dtype == torch.float32
        assert torch.equal(a.float(), b)
        if kind == "random_conv":
            assert torch.equal(b.double(), a)
    assert torch.equal(wide[1], narrow[1]) and torch.equal(wide[3], narrow[3])
    if kind == "random_conv":  # the float64 reference solve reads float32 features unchanged
        low = KernelPrecision("float32", jitter=1e-4)
        exact = study.kernel_fit(specs[0], 200)
        assert study.kernel_fit(specs[1], 200).norm == exact.norm
        assert torch.equal(study.kernel_fit(specs[1], 200, precision=low).predictions,
                           study.kernel_fit(specs[0], 200, precision=low).predictions)


def test_two_class_dataset_and_rademacher_seed_count():
    from genbench.data import ArrayDataset
    from genbench.experiment import Runs
    from genbench.training import TrainConfig

    ds = ArrayDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 3, 5, 9]), 10, "toy")
    binary = study.two_class(ds, torch.tensor([0, 1, 1, 0]))
    assert binary.num_classes == 2 and binary.y.tolist() == [0, 1, 1, 0]
    with pytest.raises(ConfigError, match="seeds"):
        study.rademacher_study(ds, Runs("mlp_1x512", TrainConfig(), (0,)), 2, seed=0)


@pytest.mark.parametrize("name", ["test_zhang_theory", "test_zhang_kernels", "test_zhang_rademacher"])
def test_full_scale_settings_construct(name):
    """Every scale's settings build (DataSpec/TrainConfig validate at construction)."""
    module = _claim_module(name)
    assert set(module.SETTINGS) == {"smoke", "full"}
    full = module.SETTINGS["full"]
    if name == "test_zhang_kernels":
        assert full.mnist_ns[-1] == 60_000 and full.conv_ns[-1] == 50_000 and full.source == "full"
        # raw CIFAR-10 pixels stop at the largest round n whose float64 kernel fits in 20 GiB
        assert full.cifar_ns[-1] == 48_000 and full.conv_check_n in full.conv_ns
        assert module._spec(full, "cifar10", "random_conv").dtype == full.conv_dtype == "float32"
    if name == "test_zhang_rademacher":
        assert full.data.source == "full" and full.config.stop == "train_acc"
        assert math.isfinite(full.config.lr)


def test_kernel_fit_builds_each_kernel_row_once_per_use(monkeypatch):
    """The Gram matrix, K alpha on the training points (error and norm alike) and the test
    kernel: 2 n + m rows, not 3 n + m (the norm's own rebuild cost as much as the Gram)."""
    from genbench.theory import kernels

    rows, build = [], kernels.gaussian_kernel

    def counted(A, *args, **kwargs):
        rows.append(len(A))
        return build(A, *args, **kwargs)

    monkeypatch.setattr(kernels, "gaussian_kernel", counted)
    spec = study.FeatureSpec(DataSpec("mnist"), seed=7)  # not cached by another test
    fit = study.kernel_fit(spec, 200)
    assert sum(rows) == 2 * 200 + fit.n_test and fit.train_error == 0.0 and fit.norm > 0
