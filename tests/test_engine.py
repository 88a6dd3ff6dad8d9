"""The engine's contract: validated config, determinism, resume, fit_many == sequential fit,
NaN stop, augmentation shapes and ranges, JSON round trip."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from genbench.errors import ConfigError
from genbench.training import Augment, NonFiniteLossError, RunResult, TrainConfig, fit, fit_many
from genbench.training import engine
from genbench.training.augment import augment_batch


@dataclass(frozen=True)
class Tensors:
    """The two fields of a dataset the engine reads; keeps these tests independent of I/O."""

    x: torch.Tensor
    y: torch.Tensor
    name: str = "synthetic"


def toy_data(n: int = 256, seed: int = 0) -> Tensors:
    g = torch.Generator().manual_seed(seed)
    return Tensors(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))


def mlp(seed: int, dropout: float = 0.0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(192, 64), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(64, 10))


def numbers(curves: dict) -> dict:
    """The curves without wall-clock seconds, which no two runs share."""
    return {k: v for k, v in curves.items() if k != "seconds"}


FAST = TrainConfig(lr=0.05, batch_size=32, max_epochs=6, lr_decay=0.95)


@pytest.mark.parametrize("field,value", [
    ("optimizer", "rmsprop"), ("lr", 0.0), ("lr", float("nan")), ("momentum", 1.0),
    ("lr_decay", 0.0), ("weight_decay", -1.0), ("batch_size", 0), ("max_epochs", 0),
    ("stop", "never"), ("precision", "fp8"), ("seed", -1), ("eval_every", 0),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_config_stop_target_required_and_in_range():
    with pytest.raises(ConfigError, match="stop_target"):
        TrainConfig(stop="train_acc")
    with pytest.raises(ConfigError, match="stop_target"):
        TrainConfig(stop="train_acc", stop_target=1.5)
    with pytest.raises(ConfigError, match="augment.rotate_degrees"):
        Augment(rotate_degrees=-3)


def test_config_round_trips_and_is_hashable():
    cfg = TrainConfig.zhang("inception_small", augment=Augment(crop_padding=2))
    assert cfg.lr == 0.1 and cfg.lr_decay == 0.95
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    hash(cfg)


def test_fit_is_bitwise_deterministic_on_cpu():
    data = toy_data()
    cfg = FAST.replace(augment=Augment(crop_padding=2, hflip=True))
    a, b = fit(mlp(1, 0.3), data, cfg, data), fit(mlp(1, 0.3), data, cfg, data)
    assert numbers(a.curves) == numbers(b.curves) and a.final == b.final


def test_fit_reaches_train_accuracy_target_and_confirms_it():
    data = toy_data()
    r = fit(mlp(0), data, FAST.replace(max_epochs=60, stop="train_acc", stop_target=1.0), data)
    assert r.fitted and r.final["train_acc"] == 1.0
    assert r.fit_epoch == r.epochs == len(r.curves["epoch"]) < 60
    assert r.fit_step == r.fit_epoch * 8


def test_different_seeds_give_different_data_orders():
    data = toy_data()
    a = fit(mlp(0), data, FAST.replace(seed=1))
    b = fit(mlp(0), data, FAST.replace(seed=2))
    assert a.curves["train_loss"] != b.curves["train_loss"]


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, monkeypatch):
    data = toy_data()
    cfg = FAST.replace(augment=Augment(hflip=True), keep_weights=True)
    whole = fit(mlp(3, 0.2), data, cfg, data)

    original = engine._train_epoch
    calls = {"n": 0}

    def crash_at_third(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args)

    ckpt = tmp_path / "run.ckpt"
    monkeypatch.setattr(engine, "_train_epoch", crash_at_third)
    with pytest.raises(KeyboardInterrupt):
        fit(mlp(3, 0.2), data, cfg, data, checkpoint=ckpt)
    monkeypatch.setattr(engine, "_train_epoch", original)
    resumed = fit(mlp(99, 0.2), data, cfg, data, checkpoint=ckpt)  # weights come from ckpt
    assert numbers(resumed.curves) == numbers(whole.curves) and resumed.final == whole.final
    for name, t in whole.final_state.items():
        assert torch.equal(t, resumed.final_state[name])


@pytest.mark.parametrize("stop", [dict(stop="epochs"),
                                  dict(stop="train_acc", stop_target=1.0, max_epochs=40)])
def test_fit_many_vmap_equals_sequential_fit(stop):
    data = toy_data()
    cfg = FAST.replace(**stop)
    seeds = [4, 5, 6]
    labels = torch.stack([toy_data(seed=s).y for s in seeds])  # each model its own labels
    together = fit_many([mlp(s) for s in seeds], data, cfg, data, seeds=seeds, labels=labels,
                        strategy="vmap")
    for s, lab, r in zip(seeds, labels, together):
        alone = fit(mlp(s), data, cfg.replace(seed=s), data, labels=lab)
        assert r.fit_epoch == alone.fit_epoch and r.epochs == alone.epochs
        for key in ("train_loss", "train_acc", "test_acc"):
            assert r.curves[key] == pytest.approx(alone.curves[key], rel=1e-4, abs=1e-5)
        assert r.final["train_acc"] == alone.final["train_acc"]


def test_fit_many_models_stop_independently():
    data = toy_data(n=128)
    cfg = FAST.replace(stop="train_acc", stop_target=1.0, max_epochs=60)
    runs = fit_many([mlp(s) for s in (0, 1)], data, cfg, seeds=[0, 11], strategy="vmap")
    assert all(r.fitted for r in runs)
    assert len(runs[0].curves["epoch"]) == runs[0].fit_epoch


def test_fit_many_rejects_bad_arguments():
    data = toy_data()
    with pytest.raises(ConfigError, match="seeds"):
        fit_many([mlp(0), mlp(1)], data, FAST, seeds=[0])
    with pytest.raises(ConfigError, match="labels"):
        fit_many([mlp(0), mlp(1)], data, FAST, labels=torch.zeros(3, 5, dtype=torch.long))


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_last_good_state():
    data = toy_data()
    bad_x = data.x.clone()
    bad_x[100] = float("nan")
    model = mlp(0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+") as info:
        fit(model, Tensors(bad_x, data.y), FAST)
    assert info.value.epoch == 1
    for name, t in model.state_dict().items():  # restored to the start of the bad epoch
        assert torch.equal(t, start[name]) and torch.equal(info.value.last_good_state[name], t)


def test_fit_refuses_unpreprocessed_images():
    data = toy_data()
    with pytest.raises(ConfigError, match="preprocess"):
        fit(mlp(0), Tensors((data.x * 0).to(torch.uint8), data.y), FAST)


@pytest.mark.parametrize("aug", [Augment(crop_padding=4), Augment(hflip=True),
                                 Augment(rotate_degrees=25),
                                 Augment(crop_padding=2, hflip=True, rotate_degrees=10)])
def test_augmentation_keeps_shape_and_range(aug):
    x = torch.rand(16, 3, 28, 28)
    out = augment_batch(x, aug, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    assert not torch.equal(out, x)
    again = augment_batch(x, aug, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_crop_is_a_shifted_window_and_flip_mirrors():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    out = augment_batch(x, Augment(crop_padding=1), torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(2):  # every crop is one of the 9 windows of the padded image
        windows = [padded[i, :, r:r + 5, c:c + 5] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped = augment_batch(x, Augment(hflip=True), torch.Generator().manual_seed(0))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


def test_run_result_json_round_trip():
    data = toy_data()
    r = fit(mlp(0), data, FAST.replace(keep_weights=True, keep_test_probs=True), data)
    back = RunResult.from_json(r.to_json())
    assert back.curves == r.curves and back.final == r.final
    assert torch.equal(back.test_probs, r.test_probs)
    assert all(torch.equal(back.init_state[k], v) for k, v in r.init_state.items())
    assert r.test_probs.shape == (256, 10)


def test_test_history_keeps_per_sample_logits_at_each_eval():
    data = toy_data()
    r = fit(mlp(0), data, FAST.replace(keep_test_history=True, eval_every=2), data)
    evals = [e for e, acc in zip(r.curves["epoch"], r.curves["test_acc"]) if acc is not None]
    assert evals == [2, 4, 6] and r.test_history.shape == (3, 256, 10)
    correct = (r.test_history[-1].argmax(-1) == data.y).float().mean().item()
    assert correct == r.curves["test_acc"][-1]
    loss = torch.nn.functional.cross_entropy(r.test_history[-1], data.y).item()
    assert loss == pytest.approx(r.curves["test_loss"][-1], rel=1e-5)
