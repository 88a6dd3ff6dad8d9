"""Experiments: data specs, corruptions applied before preprocessing, and the run cache."""

from __future__ import annotations

import pytest
import torch

from genbench import experiment
from genbench.errors import ConfigError
from genbench.experiment import Corruption, DataSpec, RunCache, Runs, prepare, train_runs
from genbench.training import TrainConfig

SPEC = DataSpec("mnist", n_train=200, n_test=100, preprocess="unit")
CONFIG = TrainConfig(lr=0.05, max_epochs=2)


def test_prepare_gives_balanced_float_subsets():
    train, test = prepare(SPEC)
    assert train.x.dtype == torch.float32 and float(train.x.max()) <= 1.0
    assert len(train) == 200 and len(test) == 100
    assert torch.bincount(train.y, minlength=10).tolist() == [20] * 10
    assert train.size_note() == "200 of 60,000 images"


def test_zhang_preprocessing_crops_to_28():
    train, _ = prepare(DataSpec("cifar10", n_train=100, n_test=100, preprocess="zhang"))
    assert train.in_shape == (3, 28, 28)
    assert train.x.flatten(1).mean(1).abs().max() < 1e-4  # per-image standardized


def test_random_labels_corrupt_train_only_and_pixels_both():
    clean_train, clean_test = prepare(SPEC)
    train, test = prepare(SPEC, Corruption("random_labels", p=1.0, seed=3))
    assert not torch.equal(train.y, clean_train.y) and torch.equal(test.y, clean_test.y)
    train, test = prepare(SPEC, Corruption("shuffled_pixels", seed=3))
    assert torch.equal(train.y, clean_train.y) and not torch.equal(test.x, clean_test.x)


@pytest.mark.parametrize("kwargs,field", [(dict(source="web"), "source"),
                                          (dict(preprocess="zca"), "preprocess"),
                                          (dict(n_train=0), "n_train")])
def test_data_spec_validates(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        DataSpec("mnist", **kwargs)


def test_corruption_validates():
    with pytest.raises(ConfigError, match="kind"):
        Corruption("blur")
    with pytest.raises(ConfigError, match="p"):
        Corruption("random_labels", p=1.5)


def test_unbalanced_subset_size_is_refused():
    with pytest.raises(ConfigError, match="multiple of 10"):
        prepare(DataSpec("mnist", n_train=205))


def test_run_cache_trains_once_per_key(monkeypatch):
    calls = []
    real = experiment.fit_many
    monkeypatch.setattr(experiment, "fit_many", lambda *a, **k: calls.append(1) or real(*a, **k))
    train, test = prepare(SPEC)
    cache = RunCache()
    runs = Runs("eo_mlp", CONFIG, seeds=(0, 1))
    first = train_runs(runs, train, test, cache=cache)
    again = train_runs(runs, train, test, cache=cache)
    assert again is first and len(calls) == 1
    train_runs(Runs("eo_mlp", CONFIG.replace(lr=0.01), seeds=(0, 1)), train, test, cache=cache)
    assert len(calls) == 2


def test_run_cache_on_disk_restores_results(tmp_path):
    train, test = prepare(SPEC)
    runs = Runs("eo_mlp", CONFIG.replace(keep_weights=True), seeds=(0,))
    first = train_runs(runs, train, test, cache=RunCache(tmp_path))
    restored = train_runs(runs, train, test, cache=RunCache(tmp_path))
    assert restored[0].final == first[0].final
    assert all(torch.equal(restored[0].final_state[k], v)
               for k, v in first[0].final_state.items())
