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
    counts = study.depth_k_counts([(n, 5, k) for n in (30, 90) for k in (2, 4, 7)], seed=0)
    assert all(c.max_ratio <= 1 and c.depth == c.k and c.weights == 2 * c.n + c.d + 1
               for c in counts)
    fit = study.line_fit([c.n / (c.k - 1) for c in counts], [c.width for c in counts])
    assert fit.r2 > 0.99 and fit.slope == pytest.approx(1.0, abs=0.1)


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
    with pytest.raises(ConfigError, match="n="):
        study.kernel_fit(spec, 10**6)


def test_feature_spec_validates():
    with pytest.raises(ConfigError, match="kind"):
        study.FeatureSpec(DataSpec("mnist"), "sift")
    with pytest.raises(ConfigError, match="num_filters"):
        study.FeatureSpec(DataSpec("cifar10"), "random_conv")


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
        assert full.mnist_ns[-1] == 60_000 and full.cifar_ns[-1] == 50_000 and full.source == "full"
        study.FeatureSpec(DataSpec("cifar10", source="full"), "random_conv",
                          num_filters=full.num_filters)
    if name == "test_zhang_rademacher":
        assert full.data.source == "full" and full.config.stop == "train_acc"
        assert math.isfinite(full.config.lr)
