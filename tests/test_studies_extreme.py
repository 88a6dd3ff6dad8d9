"""The extreme-overfitting study and the escape analysis: settings, Algorithm 1, statistics.

The full-scale settings of ``claims/test_extreme_overfitting.py`` are constructed here, so a
typo in them fails on every CPU run instead of hiding until a GPU box runs the full cases.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from genbench.analysis.escape import escape, load_point
from genbench.data import ArrayDataset
from genbench.data.corruptions import extreme_overfitting_set
from genbench.errors import ConfigError
from genbench.experiment import DataSpec
from genbench.models import build
from genbench.studies import extreme as eo
from genbench.training import RunResult, TrainConfig

CLAIMS = Path(__file__).resolve().parents[1] / "claims" / "test_extreme_overfitting.py"


def _load_claims(name: str = "eo_claims"):
    """The claim module, imported afresh (its SETTINGS read GENBENCH_RUNS at import)."""
    spec = importlib.util.spec_from_file_location(name, CLAIMS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def claim_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(eo.RUNS_ENV, raising=False)
        return _load_claims()


def _dataset(n: int, seed: int, k: int = 10) -> ArrayDataset:
    gen = torch.Generator().manual_seed(seed)
    return ArrayDataset(torch.rand(n, 1, 28, 28, generator=gen),
                        torch.randint(0, k, (n,), generator=gen), k, f"toy{seed}")


def test_full_settings_are_the_papers(claim_module):
    full = claim_module.FULL
    assert set(full.extreme_pairs) == set(full.analysis_pairs) == {
        (m, d) for m in eo.MODELS for d in eo.DATASETS}
    for model, dataset in full.analysis_pairs:
        study = full.study(model, dataset)
        assert study.runs == 200 and study.data == DataSpec(dataset, source="full")
        c = study.run_config
        assert (c.optimizer, c.lr, c.batch_size, c.weight_decay) == ("adam", 1e-3, 128, 0.0)
        assert c.keep_weights and c.stop == "epochs" and c.eval_every == 1
        assert study.with_weight_decay(claim_module.WEIGHT_DECAY).config.weight_decay == 1e-4
    assert claim_module.ESCAPE_SGD.optimizer == "sgd"


def test_smoke_settings_can_reach_the_p_value(claim_module):
    smoke = claim_module.SMOKE
    for model, dataset in smoke.analysis_pairs:
        r = smoke.study(model, dataset).runs
        assert eo.min_mannwhitney_p(r, r) < claim_module.P_MAX
    assert eo.min_mannwhitney_p(4, 4) > 0.01 > eo.min_mannwhitney_p(5, 5) == 1 / 252


def test_runs_override_sets_the_full_studies_r_and_says_so(monkeypatch):
    """`genbench run --runs 20` (GENBENCH_RUNS): every full-scale study runs R = 20 per group,
    the record says where R came from, and the smoke settings keep their own R."""
    monkeypatch.setenv(eo.RUNS_ENV, "20")
    module = _load_claims("eo_claims_r20")
    assert dict(module.FULL.runs) == {m: 20 for m in eo.MODELS}
    assert module.FULL.study("eo_mlp", "mnist").runs == 20
    assert module.FULL.runs_note == "R = 20 per group, from GENBENCH_RUNS (the paper: 200)"
    assert dict(module.SMOKE.runs) == {"eo_mlp": 5, "eo_cnn": 3, "eo_resnet": 3}
    assert eo.min_mannwhitney_p(20, 20) < module.P_MAX  # the test can still decide at R = 20


def test_runs_unset_is_the_papers(monkeypatch):
    monkeypatch.delenv(eo.RUNS_ENV, raising=False)
    assert eo.runs_per_group(200) == 200
    assert eo.runs_source(200) == "R = 200 per group, the paper's"


@pytest.mark.parametrize("value", ["0", "-3", "twenty", "2.5"])
def test_runs_override_rejects_what_is_not_a_count(monkeypatch, value):
    monkeypatch.setenv(eo.RUNS_ENV, value)
    with pytest.raises(ConfigError, match=f"GENBENCH_RUNS='{value}'"):
        eo.runs_per_group(200)


def test_study_rejects_bad_settings():
    data = DataSpec("mnist")
    with pytest.raises(ConfigError, match="Study.model"):
        eo.Study("mlp_1x512", data, 2, TrainConfig.extreme())
    with pytest.raises(ConfigError, match="Study.runs"):
        eo.Study("eo_mlp", data, 0, TrainConfig.extreme())
    with pytest.raises(ConfigError, match="stop"):
        eo.Study("eo_mlp", data, 2, TrainConfig.extreme(stop="train_acc", stop_target=0.9))
    with pytest.raises(ConfigError, match="dataset"):
        eo.Study("eo_mlp", DataSpec("usps"), 2, TrainConfig.extreme())


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 60), m=st.integers(1, 25), seed=st.integers(0, 2**16))
def test_construction_measures_algorithm_1(n, m, seed):
    train, test = _dataset(n, seed), _dataset(m, seed + 1)
    c = eo.construction(train, test, extreme_overfitting_set(train, test, seed))
    assert c.repeats == n // m + 1 and c.size == n + c.repeats * m
    assert c.train_unchanged and c.copies_identical and c.true_labels_kept == 0
    assert sum(c.offset_counts) == m and len(c.offset_counts) == 9 and 0 <= c.uniform_p <= 1


def test_construction_sees_a_kept_true_label():
    train, test = _dataset(20, 0), _dataset(10, 1)
    bad = extreme_overfitting_set(train, test, 0)
    y = bad.y.clone()
    y[20:] = torch.where(torch.arange(10) < 4, test.y, bad.y[20:30]).repeat(3)
    c = eo.construction(train, test, bad.with_labels(y))
    assert c.true_labels_kept == 4 and c.copies_identical and sum(c.offset_counts) == 6


def test_epochs_to_fit_and_median():
    r = RunResult(config={})
    r.curves["epoch"], r.curves["train_acc"] = [1, 2, 3], [0.5, 0.995, 1.0]
    assert eo.epochs_to_fit(r, 0.99) == 2 and eo.epochs_to_fit(r, 1.0) == 3
    assert eo.epochs_to_fit(r, 1.0 + 1e-9) is None
    assert eo.median([1, 3, None]) == 3 and eo.median([None, None, 1]) == float("inf")


def test_shift_test_effect_sizes():
    s = eo.shift_test([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert s.p == pytest.approx(1 / 252) and s.common_language == 1 and s.rank_biserial == 1
    assert eo.shift_test([1, 2], [1, 2]).common_language == 0.5


def test_escape_runs_sgd_from_the_given_point():
    train, test = _dataset(40, 0), _dataset(20, 1)
    start = build("eo_mlp", train.in_shape, 10, seed=3, init="xavier_uniform").state_dict()
    config = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.0, batch_size=16, max_epochs=2)
    e = escape("eo_mlp", start, train, test, config)
    assert e.epochs == (0, 1, 2) and len(e.test_acc) == 3 and e.final_test_acc == e.test_acc[-1]
    again = escape("eo_mlp", start, train, test, config)
    assert again.test_acc == e.test_acc  # deterministic on the CPU
    net = load_point("eo_mlp", start, train.in_shape, 10)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in start.items())
    with pytest.raises(ConfigError, match="optimizer"):
        escape("eo_mlp", start, train, test, TrainConfig.extreme(max_epochs=1))


def test_tiny_study_shares_runs_and_measures_them():
    study = eo.Study("eo_mlp", DataSpec("mnist", n_train=40, n_test=20), 2,
                     TrainConfig.extreme(max_epochs=1, batch_size=32))
    data = eo.study_data(study.data)
    assert len(data.extreme) == 40 + 3 * 20
    runs = eo.extreme_runs(study, data)
    assert eo.extreme_runs(study, data) is runs  # the run cache: never trained twice
    assert len(eo.normal_runs(study, data)) == 2
    for values in (eo.distances(study, data, runs), eo.weight_norms(study, data, runs),
                   eo.accuracies(study, data, runs, data.train),
                   eo.gradient_norms(study, data, runs, at="init")):
        assert len(values) == 2 and all(v >= 0 for v in values)


def test_distances_leave_out_batchnorm_statistics():
    """Running statistics are buffers, not weights: only parameters enter distances/norms."""
    study = eo.Study("eo_resnet", DataSpec("mnist"), 1, TrainConfig.extreme())
    data = eo.StudyData(_dataset(2, 0), _dataset(2, 1), _dataset(2, 2))
    net = build("eo_resnet", (1, 28, 28), 10, seed=0)
    weights = eo._weights(study, data, net.state_dict())
    assert weights.keys() == dict(net.named_parameters()).keys()


def test_smoke_covers_the_cnn_and_two_datasets(claim_module):
    smoke = claim_module.SMOKE
    assert {m for m, _ in smoke.extreme_pairs} == set(eo.MODELS)
    assert len({d for _, d in smoke.extreme_pairs}) >= 2
    assert len({d for _, d in smoke.analysis_pairs}) >= 2
    assert smoke.escape_epochs * (smoke.n_train // 128 + 1) >= 4_000  # SGD steps from a point
    assert claim_module.PAIR_IDS[0] == "eo_mlp-mnist" and len(claim_module.PAIR_IDS) == 9
