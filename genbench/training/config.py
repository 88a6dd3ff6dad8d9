"""Training configuration: every hyperparameter of a run in one frozen, validated place.

A run is identified by its config (plus data, model and seed), so the config must be immutable
and hashable, and a bad value must fail here, at construction, with the field named, rather
than as a stack trace twenty minutes into a run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from genbench.errors import ConfigError
from genbench.validate import check_field_types

Optimizer = Literal["sgd", "adam"]
StopRule = Literal["epochs", "train_acc", "loss"]
Precision = Literal["auto", "fp32", "bf16"]

_OPTIMIZERS = ("sgd", "adam")
_STOPS = ("epochs", "train_acc", "loss")
_PRECISIONS = ("auto", "fp32", "bf16")
_COMPILE = ("auto", "on", "off")
_FLOAT32_MAX = 3.4028234663852886e38


def _require(ok: bool, field_name: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"TrainConfig.{field_name}={value!r} is not allowed: {allowed}")


@dataclass(frozen=True)
class Augment:
    """On-device data augmentation, applied to each training batch.

    crop_padding: random crop of the original size after zero-padding each side by this many
        pixels (Zhang's "random cropping"; 0 disables it).
    hflip: random horizontal flip with probability 1/2.
    rotate_degrees: random rotation, uniform in [-rotate_degrees, rotate_degrees] (Zhang's
        "augmentation": flip plus rotation up to 25 degrees).
    """

    crop_padding: int = 0
    hflip: bool = False
    rotate_degrees: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self, "TrainConfig.augment")  # every field's type, before ranges
        _require(isinstance(self.crop_padding, int) and self.crop_padding >= 0,
                 "augment.crop_padding", "an int >= 0", self.crop_padding)
        _require(isinstance(self.hflip, bool), "augment.hflip", "True or False", self.hflip)
        _require(0.0 <= float(self.rotate_degrees) <= 180.0, "augment.rotate_degrees",
                 "a number of degrees in [0, 180]", self.rotate_degrees)

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip or self.rotate_degrees > 0


@dataclass(frozen=True)
class TrainConfig:
    """One training run's hyperparameters.

    optimizer: "sgd" (with ``momentum``) or "adam".
    lr: initial learning rate. The schedule is :func:`lr_at`: with ``lr_decay_steps`` None
        it is multiplied by ``lr_decay`` after every epoch; with ``lr_decay_steps`` = S it
        decays by ``lr_decay`` every S steps, continuously, step by step (Zhang: x0.95 per
        390.6 steps, the paper's epoch, whatever the size of the subset trained on).
    weight_decay: L2 penalty coefficient, as the optimizer's weight_decay.
    batch_size, max_epochs: the step size of the data and the budget of the run.
    stop: "epochs" trains ``max_epochs``; "train_acc" stops once the epoch's own training
        passes reach ``stop_target`` accuracy and one full evaluation pass confirms it (unless
        ``confirm_fit`` is False: the "online accuracy" Zhang uses under augmentation); "loss"
        stops once the epoch's mean training loss is at most ``stop_target``.
    augment: on-device augmentation (see :class:`Augment`).
    precision: "auto" is bf16 autocast on CUDA and fp32 on the CPU.
    compile: torch.compile the model: "auto" does so on CUDA only, where it pays.
    seed: fixes data order, augmentation and dropout of the run (the model's initial weights
        are fixed by the seed given to ``genbench.models.build``).
    eval_every: evaluate on the test set every this many epochs (and at the end).
    keep_weights: keep initial and final weights in the result.
    keep_test_probs: keep per-sample test probabilities of the final model in the result.
    keep_train_eval: evaluate the whole (un-augmented) training set at every eval epoch too.
    keep_test_history: keep per-sample test logits at every eval epoch (the consensus
        paper's per-sample losses and softmax-input norms need them), as
        ``RunResult.test_history``.
    """

    optimizer: Optimizer = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    lr_decay: float = 1.0
    lr_decay_steps: float | None = None
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 100
    stop: StopRule = "epochs"
    stop_target: float | None = None
    confirm_fit: bool = True
    augment: Augment = field(default_factory=Augment)
    precision: Precision = "auto"
    compile: str = "auto"
    seed: int = 0
    eval_every: int = 1
    keep_weights: bool = False
    keep_test_probs: bool = False
    keep_train_eval: bool = False
    keep_test_history: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)  # every field's type (bool vs number vs string, None), then ranges
        _require(self.optimizer in _OPTIMIZERS, "optimizer", f"one of {_OPTIMIZERS}",
                 self.optimizer)
        _require(self.lr <= _FLOAT32_MAX, "lr", "at most float32's largest number (the "
                 "optimizer's arithmetic overflows beyond it)", self.lr)
        _require(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
                 "lr", "a finite number > 0", self.lr)
        _require(0.0 <= self.momentum < 1.0, "momentum", "a number in [0, 1)", self.momentum)
        _require(0.0 < self.lr_decay <= 1.0, "lr_decay", "a factor in (0, 1]", self.lr_decay)
        _require(self.lr_decay_steps is None or (
            isinstance(self.lr_decay_steps, (int, float)) and math.isfinite(self.lr_decay_steps)
            and self.lr_decay_steps > 0), "lr_decay_steps", "None or a number of steps > 0",
            self.lr_decay_steps)
        _require(self.weight_decay >= 0.0, "weight_decay", "a number >= 0", self.weight_decay)
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
                 "an int >= 1", self.batch_size)
        _require(isinstance(self.max_epochs, int) and self.max_epochs >= 1, "max_epochs",
                 "an int >= 1", self.max_epochs)
        _require(self.stop in _STOPS, "stop", f"one of {_STOPS}", self.stop)
        if self.stop == "train_acc":
            _require(self.stop_target is not None and 0.0 < self.stop_target <= 1.0,
                     "stop_target", "an accuracy in (0, 1] when stop='train_acc'",
                     self.stop_target)
        elif self.stop == "loss":
            _require(self.stop_target is not None and self.stop_target > 0.0, "stop_target",
                     "a loss > 0 when stop='loss'", self.stop_target)
        _require(isinstance(self.augment, Augment), "augment", "an Augment(...)", self.augment)
        _require(self.precision in _PRECISIONS, "precision", f"one of {_PRECISIONS}",
                 self.precision)
        _require(self.compile in _COMPILE, "compile", f"one of {_COMPILE}", self.compile)
        _require(isinstance(self.seed, int) and self.seed >= 0, "seed", "an int >= 0",
                 self.seed)
        _require(isinstance(self.eval_every, int) and self.eval_every >= 1, "eval_every",
                 "an int >= 1", self.eval_every)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"TrainConfig.{unknown[0]}: not a field of TrainConfig "
                              f"(unknown: {', '.join(unknown)})")
        data["augment"] = Augment(**data.get("augment", {}))
        return cls(**data)

    @classmethod
    def zhang(cls, model: str, **changes: Any) -> "TrainConfig":
        """Zhang et al. (2017), Appendix A: SGD momentum 0.9, lr 0.1 for Inception and 0.01
        for AlexNet and the MLPs, x0.95 per epoch, batch 128, no regularizer."""
        lr = 0.1 if model.startswith("inception") else 0.01
        base = cls(optimizer="sgd", lr=lr, momentum=0.9, lr_decay=0.95, batch_size=128)
        return base.replace(**changes) if changes else base

    @classmethod
    def extreme(cls, **changes: Any) -> "TrainConfig":
        """Points-of-extreme-overfitting paper, Section 4.3: Adam lr 1e-3, batch 128."""
        base = cls(optimizer="adam", lr=1e-3, momentum=0.0, batch_size=128)
        return base.replace(**changes) if changes else base


def lr_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based), a pure function of the config:
    the loop sets it before every step and the records report it, so both agree by
    construction. Per epoch (``lr_decay_steps`` None): ``lr * lr_decay ** epoch``; per step:
    ``lr * lr_decay ** (step / lr_decay_steps)``."""
    if config.lr_decay_steps is None:
        return config.lr * config.lr_decay ** (step // steps_per_epoch)
    return config.lr * config.lr_decay ** (step / config.lr_decay_steps)
