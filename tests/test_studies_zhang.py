"""genbench.studies.zhang: the measurements the Zhang claims rely on, and the full-scale
settings constructed here so a typo cannot hide until a GPU run."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from genbench.data import ArrayDataset
from genbench.experiment import Corruption, DataSpec
from genbench.studies import zhang as z
from genbench.training import RunResult, TrainConfig, lr_at

CLAIMS = Path(__file__).resolve().parents[1] / "claims" / "test_zhang_randomization.py"


def _claims_module():
    spec = importlib.util.spec_from_file_location("zhang_claims", CLAIMS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(losses, test_accs) -> RunResult:
    r = RunResult(config={})
    r.curves["step"] = [10 * (i + 1) for i in range(len(losses))]
    r.curves["train_loss"] = list(losses)
    r.curves["test_acc"] = list(test_accs)
    return r


def test_chance_interval_contains_chance_and_shrinks_with_n():
    lo, hi = z.chance_interval(1_000)
    assert lo < 0.1 < hi
    lo2, hi2 = z.chance_interval(200)
    assert hi2 - lo2 > hi - lo


def test_accuracy_interval_is_clopper_pearson():
    lo, hi = z.accuracy_interval(0.5, 100)
    assert lo == pytest.approx(0.3983, abs=1e-3) and hi == pytest.approx(0.6017, abs=1e-3)


def test_difference_noise_matches_formula():
    assert z.difference_noise(0.5, 1_000) == pytest.approx(1.96 * (0.5 / 1_000) ** 0.5)


def test_steps_to_loss_and_best_test_acc():
    r = _result([2.3, 1.6, 1.2, 0.4], [0.1, None, 0.3, 0.25])
    assert z.steps_to_loss(r, 1.5) == 30
    assert z.steps_to_loss(r, 0.1) is None
    assert z.best_test_acc(r) == 0.3
    assert z.curve(r, "step", "test_acc") == {"x": [10, 30, 40], "y": [0.1, 0.3, 0.25]}


def test_slowdown_rising_costs():
    trend = z.slowdown([0, 0.5, 1], [100, 150, 300])
    assert trend["spearman_rho"] == pytest.approx(1.0)
    assert trend["ratio_last_first"] == pytest.approx(3.0)


def test_noise_labels_rows_follow_levels():
    gen = torch.Generator().manual_seed(0)
    ds = ArrayDataset(torch.zeros(500, 1, 2, 2), torch.randint(0, 10, (500,), generator=gen),
                      10, "toy")
    labels = z.noise_labels(ds, (0.0, 0.5, 1.0), seed=3)
    assert labels.shape == (3, 500)
    assert torch.equal(labels[0], ds.y)
    changed = (labels != ds.y).float().mean(1)
    assert changed[1] < changed[2]  # about 0.45 and 0.9 of the labels change
    assert torch.equal(labels, z.noise_labels(ds, (0.0, 0.5, 1.0), seed=3))


def test_configs_follow_appendix_a():
    b = z.Budget(None, None, 300)
    assert z.fit_config("inception_small", b).lr == 0.1
    cfg = z.fit_config("mlp_1x512", b, weight_decay=z.WEIGHT_DECAY)
    assert (cfg.lr, cfg.lr_decay, cfg.momentum, cfg.batch_size) == (0.01, 0.95, 0.9, 128)
    assert cfg.lr_decay_steps is None  # full scale: the paper's own x0.95 after every epoch
    assert (cfg.stop, cfg.stop_target, cfg.weight_decay) == ("train_acc", 1.0, 5e-4)
    aug = z.augmented_config("inception_small", b, z.FLIP_ROTATE)
    assert aug.lr_decay == 0.999 and not aug.confirm_fit and aug.augment.rotate_degrees == 25
    assert aug.lr_decay_steps is None
    assert z.data_spec("full", b) == DataSpec("cifar10", source="full", preprocess="zhang")


@pytest.mark.parametrize("scale", ["smoke", "full"])
def test_claim_settings_construct(scale):
    """Every config, data spec and corruption the claims use at this scale is valid."""
    claims = _claims_module()
    for model in claims.MLPS + claims.CONVS:
        b = claims.budget(scale, model)
        z.data_spec(claims._source(scale), b)
        z.fit_config(model, b)
        z.fit_config(model, b, weight_decay=z.WEIGHT_DECAY)
        z.fit_config(model, b, augment=z.RANDOM_CROP)
        z.augmented_config(model, b, z.FLIP_ROTATE)
    for kind in z.INPUT_CORRUPTIONS:
        Corruption(kind, 1.0, claims.LABEL_SEED)
    assert isinstance(TrainConfig.from_dict(z.fit_config("mlp_1x512", b).to_dict()), TrainConfig)


def test_smaller_batches_scale_the_lr_linearly_and_decay_per_image():
    """Goyal et al. 2017's linear scaling rule: lr x 32/128 at batch 32; on a subset the
    decay is the per-step schedule x0.95 per 50,000 / batch steps, so the lr at any step is
    the paper's after the same number of images seen, whatever the batch and subset size."""
    b = z.Budget(200, 200, 30, batch_size=32)
    assert z.scaled_lr("inception_small", 32) == pytest.approx(0.025)
    assert z.fit_config("alexnet_small", b).lr == pytest.approx(0.0025)
    cfg = z.fit_config("inception_small", b)
    assert (cfg.lr_decay, cfg.lr_decay_steps) == (0.95, 50_000 / 32)
    assert z.fit_config("mlp_1x512", z.Budget(2_000, 1_000, 80)).lr_decay_steps == 390.625
    aug = z.augmented_config("inception_small", b, z.FLIP_ROTATE)
    assert (aug.lr_decay, aug.lr_decay_steps) == (0.999, 50_000 / 32)


@pytest.mark.parametrize("model", ["mlp_1x512", "inception_small"])
def test_smoke_lr_is_the_papers_per_image_seen_and_full_keeps_per_epoch_decay(model):
    """At smoke (the claims' own budgets) lr_at(step) = lr * 0.95 ** (step * batch / 50,000)
    at every step, across the subset's epoch boundaries; at full scale the decay is the
    paper's per epoch: constant within an epoch, x0.95 at each boundary."""
    claims = _claims_module()
    smoke = claims.budget("smoke", model)
    cfg = z.fit_config(model, smoke)
    per_epoch = -(-smoke.n_train // smoke.batch_size)  # the subset's steps per epoch
    for step in (0, 1, per_epoch - 1, per_epoch, 390, 391, 1_000, 5_000):
        assert lr_at(cfg, step, per_epoch) == pytest.approx(
            cfg.lr * 0.95 ** (step * smoke.batch_size / 50_000), rel=1e-12)
    full = z.fit_config(model, claims.budget("full", model))
    steps = math.ceil(50_000 / full.batch_size)  # 391 steps per epoch of 50,000 images
    assert full.lr_decay_steps is None
    assert [lr_at(full, s, steps) for s in (0, steps - 1, steps, 2 * steps + 5)] == [
        pytest.approx(full.lr * f) for f in (1.0, 1.0, 0.95, 0.95 ** 2)]


def test_smoke_conv_budget_is_the_scaled_design():
    claims = _claims_module()
    b = claims.budget("smoke", "inception_small")
    assert (b.n_train, b.batch_size) == (200, 32)
    assert z.fit_config("inception_small", b).lr == pytest.approx(0.1 * 32 / 128)
    assert claims.budget("full", "inception_small").batch_size == 128


def test_claim_cases_are_the_tables_rows():
    from genbench.papers.zhang import TABLE1, TABLE1_REGULARIZED, TABLE4
    claims = _claims_module()
    assert set(claims.MODELS) == set(TABLE1)
    assert len(TABLE1_REGULARIZED) == 9 and set(claims.SMOKE_REGULARIZED) <= set(TABLE1_REGULARIZED)
    assert {f"{m}-weight_decay" for m in claims.WD_ROWS} | {
        f"inception_small-{a}" for a in claims.AUGMENTS} == set(TABLE4)
    assert TABLE1["mlp_1x512"].random_test == 0.1061
    assert TABLE1_REGULARIZED["alexnet_small-crop_wd"].test == 0.8122


def test_imagenet_no_regularization_rows_build_inception_without_dropout():
    from torch import nn

    from genbench.models.imagenet import _torchvision_inception_v3
    from genbench.studies.imagenet import ImageNetSettings

    s = ImageNetSettings()
    assert (s.dropout, s.weight_decay, s.config().weight_decay) == (0.0, 0.0, 0.0)
    with torch.device("meta"):
        net = _torchvision_inception_v3(1000, s.dropout)
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.0]
