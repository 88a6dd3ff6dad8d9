"""Zhang et al. (ICLR 2017), "Understanding deep learning requires rethinking generalization":
the randomization tests of Sections 2-3 and Appendix E as reusable compositions.

Every run goes through :func:`genbench.experiment.train_runs`, so the claims of Table 1,
Figure 1c, early stopping and BatchNorm that name the same data, corruption and runs train
them once per session. A "fit" is Zhang's: training stops when the training set is classified
100% correctly, confirmed by a full evaluation pass (or, under augmentation, the online
accuracy of the epoch, as the paper's footnote 5 defines it), within an epoch budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from genbench.data import ArrayDataset
from genbench.data import corruptions
from genbench.experiment import Corruption, DataSpec, RunCache, Runs, prepare, train_runs
from genbench.stats import (  # re-exported: the claims read them as z.<name>
    CIFAR10_CHANCE,
    accuracy_interval,
    chance_interval,
    difference_noise,
    rank_correlation,
)
from genbench.training import Augment, RunResult, TrainConfig

TABLE1_MODELS = ("mlp_1x512", "mlp_3x512", "alexnet_small", "inception_small",
                 "inception_small_nobn")
NOISE_LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Figure 1b/1c
INPUT_CORRUPTIONS = ("none", "random_labels", "shuffled_pixels", "random_pixels",
                     "gaussian_pixels")  # Figure 1a
CHANCE = 0.1  # CIFAR-10: ten balanced classes
# Table 4's "default coefficient for each model" is not printed; 5e-4 is the usual L2
# coefficient for these CIFAR-10 networks, and the same value for every model keeps the
# comparison about the model, not about a tuned constant.
WEIGHT_DECAY = 5e-4
RANDOM_CROP = Augment(crop_padding=2)  # 28x28 crops of 32x32 padded images: Zhang's crop
FLIP_ROTATE = Augment(hflip=True, rotate_degrees=25.0)  # Table 4, footnote 6
AUGMENT_LR_DECAY = 0.999  # Appendix E: the decay used for the augmented random-label runs
PAPER_LR_DECAY = 0.95  # Appendix A, per epoch of 50,000 images
PAPER_BATCH = 128  # Appendix A
PAPER_EPOCH_IMAGES = 50_000
# The paper trained in TensorFlow, whose default initializer for convolution and dense
# weights is Glorot (Xavier) uniform with zero biases. PyTorch's default is about 2.4x
# smaller for these layers, small enough that the 14-convolution Inception without
# BatchNorm did not train at all in our measurements; so the Zhang models use TF's.
INIT = "xavier_uniform"


@dataclass(frozen=True)
class Budget:
    """How much data and how many epochs a model gets at one scale.

    n_train / n_test: class-balanced subsets (None: the whole split); max_epochs: the budget
    within which the training set must be fitted; batch_size: Zhang's 128 at full scale;
    eval_every: test evaluation period (1 gives the early-stopping curve)."""

    n_train: int | None
    n_test: int | None
    max_epochs: int
    batch_size: int = 128
    eval_every: int = 1


def data_spec(source: str, budget: Budget) -> DataSpec:
    """CIFAR-10 with Zhang's preprocessing (scale, centre-crop 28, per-image whitening)."""
    return DataSpec("cifar10", source=source, n_train=budget.n_train, n_test=budget.n_test,
                    preprocess="zhang")


def _decay_schedule(per_epoch: float, budget: Budget) -> dict[str, Any]:
    """The paper's per-epoch lr decay as :class:`TrainConfig` fields. At full scale it is the
    paper's own schedule: x``per_epoch`` after every epoch of 50,000 images. On a subset
    (``budget.n_train`` not None) it is the per-step schedule ``lr_decay_steps`` = 50,000 /
    batch (x0.95 per 390.6 steps at batch 128), so the learning rate is the same function of
    the number of *images seen* as in the paper. On a 2,000-image subset an epoch is 16
    steps; decaying by 0.95 every 16 steps would starve the run of learning rate long before
    it could fit."""
    if budget.n_train is None:
        return dict(lr_decay=per_epoch, lr_decay_steps=None)
    return dict(lr_decay=per_epoch, lr_decay_steps=PAPER_EPOCH_IMAGES / budget.batch_size)


def scaled_lr(model: str, batch_size: int) -> float:
    """The paper's learning rate (Appendix A: 0.1 Inception, 0.01 AlexNet and MLPs) for a
    batch of ``batch_size`` instead of 128, by the linear scaling rule (Goyal et al. 2017,
    "Accurate, large minibatch SGD", Sec. 2.1: multiply the lr by k when the batch is
    multiplied by k), so that each image moves the weights as much as in the paper. At batch
    128 this is the paper's lr itself."""
    return TrainConfig.zhang(model).lr * batch_size / PAPER_BATCH


def fit_config(model: str, budget: Budget, **changes: Any) -> TrainConfig:
    """Appendix A's schedule for ``model``, stopping at a confirmed 100% training accuracy."""
    base = dict(max_epochs=budget.max_epochs, batch_size=budget.batch_size,
                eval_every=budget.eval_every, stop="train_acc", stop_target=1.0,
                lr=scaled_lr(model, budget.batch_size),
                **_decay_schedule(PAPER_LR_DECAY, budget))
    return TrainConfig.zhang(model, **{**base, **changes})


def augmented_config(model: str, budget: Budget, augment: Augment) -> TrainConfig:
    """Table 4's augmented runs: online accuracy (no confirming pass) and lr decay 0.999."""
    return fit_config(model, budget, augment=augment, confirm_fit=False,
                      **_decay_schedule(AUGMENT_LR_DECAY, budget))


def train_corrupted(model: str, spec: DataSpec, corruption: Corruption, config: TrainConfig,
                    seeds: Sequence[int] = (0,), device: torch.device | str = "cpu",
                    cache: RunCache | None = None
                    ) -> tuple[list[RunResult], ArrayDataset, ArrayDataset]:
    """Runs of ``model`` on ``spec`` under one corruption through the run cache (the
    session's default, or ``cache``: a fresh one makes a benchmark really train); returns
    them and the prepared data."""
    train, test = prepare(spec, corruption, device)
    results = train_runs(Runs(model, config, tuple(seeds), init=INIT), train, test,
                         corruption=corruption, cache=cache)
    return results, train, test


def random_label_test_accuracies(model: str, spec: DataSpec, config: TrainConfig,
                                 seeds: Sequence[int], device: torch.device | str = "cpu"
                                 ) -> list[float]:
    """Test accuracy after fitting random labels, once per seed (the seed draws both the labels
    and the weights): the seed-to-seed spread that sets the chance band of Table 1's
    random-label rows. Needed because a random-label network's predictions are constant over
    clusters of similar images, so its test accuracy varies far more than the binomial noise
    of independent guesses on the same number of images."""
    return [float(train_corrupted(model, spec, Corruption("random_labels", 1.0, s), config,
                                  (s,), device)[0][0].final["test_acc"]) for s in seeds]


def noise_labels(train: ArrayDataset, levels: Sequence[float], seed: int) -> torch.Tensor:
    """(K, N) labels: row k has each label replaced by a uniform draw with prob. levels[k]."""
    return torch.stack([corruptions.random_labels(train, p, seed).y for p in levels])


def noise_sweep(model: str, spec: DataSpec, config: TrainConfig, levels: Sequence[float],
                seed: int = 0, device: torch.device | str = "cpu", *,
                weight_seed: int | None = None
                ) -> tuple[list[RunResult], ArrayDataset, ArrayDataset]:
    """Figure 1b/1c: one launch of len(levels) runs, same initial weights and data order
    (``weight_seed``, default ``seed``), each with its own label-noise level (labels drawn
    once with ``seed``)."""
    train, test = prepare(spec, Corruption(), device)
    labels = noise_labels(train, levels, seed)
    runs = Runs(model, config, seeds=(seed if weight_seed is None else weight_seed,) * len(levels),
                init=INIT)
    return train_runs(runs, train, test, labels=labels), train, test


# ----------------------------------------------------------------------------- measurements

# accuracy_interval, chance_interval and difference_noise live in genbench.stats (imported above).


def steps_to_loss(result: RunResult, level: float) -> int | None:
    """Training steps until the epoch's mean training loss first falls to ``level``
    (Figure 1a's "start converging"); None if it never does."""
    for step, loss in zip(result.curves["step"], result.curves["train_loss"]):
        if loss <= level:
            return int(step)
    return None


def best_test_acc(result: RunResult) -> float:
    """The best test accuracy along training (Section 3's early-stopping reference)."""
    return max(a for a in result.curves["test_acc"] if a is not None)


def slowdown(levels: Sequence[float], costs: Sequence[float]) -> dict[str, float]:
    """Spearman correlation of a fitting cost with the noise level, and the cost ratio of the
    noisiest to the cleanest run (Figure 1b)."""
    corr = rank_correlation(levels, costs, "spearman")
    return {"spearman_rho": corr.rho, "spearman_p": corr.p,
            "ratio_last_first": float(costs[-1] / costs[0])}


def curve(result: RunResult, x: str, y: str) -> dict[str, list[float]]:
    """A figure series from a run's curves (epochs without that value left out)."""
    pairs = [(a, b) for a, b in zip(result.curves[x], result.curves[y]) if b is not None]
    return {"x": [a for a, _ in pairs], "y": [b for _, b in pairs]}
