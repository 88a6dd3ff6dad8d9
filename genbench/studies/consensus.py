"""Consensus paper ("overfitting mechanism and consensus-based classification"): the runs and
measurements its claims share.

The paper's setting (Section V): MNIST with 1,000 training images and the 10,000 test images
as validation set, and USPS (7,291 / 2,007 images, 16x16) for Figures 3 and 5. The three
consensus members are three architectures (``c_cnn``, the Section II network, and ``c_mlp``,
``c_lenet``). The paper names Keras but no optimizer, learning rate or batch size; we use
Adam (lr 1e-3), the closest of the engine's optimizers to Keras' usual choices (Adam /
Adadelta), and Keras' default batch size of 32 (``Setting.config``).

Every run goes through :func:`genbench.experiment.train_runs`, so claims that name the same
runs train them once per session: the Section II network trains seeds 0 and 1 side by side
(``fit_many``); seed 0 is also the consensus member, seeds 0 and 1 are Figure 1's two
solutions. The USPS run keeps its per-sample test probabilities at every epoch
(``keep_test_history``), which gives Figures 2, 3 and 5 from one run.

Per-epoch per-sample losses and the softmax inputs' norm come from the per-sample test
logits the engine keeps at every epoch, so they are exact and need no second run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genbench.analysis import (
    REJECT,
    InterpolationPath,
    ThresholdSweep,
    consensus,
    coverage,
    interpolation_path,
    logit_norm,
    loss_overlap,
    loss_split,
    split_losses,
    threshold_sweep,
    trend,
)
from genbench.analysis.escape import load_point
from genbench.data import ArrayDataset
from genbench.errors import ConfigError
from genbench.experiment import DataSpec, Runs, prepare, raw_splits, train_runs
from genbench.training import RunResult, TrainConfig

ARCHITECTURES = ("c_cnn", "c_mlp", "c_lenet")  # "three models having different architectures"
SOLUTION_SEEDS = (0, 1)  # Section II: the network trained from two initializations
DROPOUTS = (0.25, 0.5, 0.75)  # Section V.C, Figure 8


@dataclass(frozen=True)
class Setting:
    """One scale of the paper's setting: the MNIST and USPS data and their epoch budgets."""

    mnist: DataSpec
    usps: DataSpec
    mnist_epochs: int
    usps_epochs: int
    batch_size: int = 32

    def config(self, epochs: int, per_epoch: bool = False) -> TrainConfig:
        """Adam lr 1e-3 for ``epochs`` epochs, final weights and test probabilities kept.

        ``per_epoch``: evaluate the test set after every epoch and keep its per-sample
        probabilities (the loss dynamics); otherwise only the final model is evaluated, which
        is all the consensus needs. ``compile="off"`` and a constant learning rate make a run
        trained to epoch e the first e epochs of a longer one on every device (the
        loss-dynamics prefix run relies on it).
        """
        return TrainConfig(optimizer="adam", lr=1e-3, momentum=0.0, batch_size=self.batch_size,
                           max_epochs=epochs, compile="off", keep_weights=True,
                           keep_test_probs=True, keep_test_history=per_epoch,
                           eval_every=1 if per_epoch else epochs)


def size_notes(spec: DataSpec) -> dict[str, str]:
    """The images a spec names, in words, for ``claim.sizes`` (no preprocessing needed)."""
    train, test = raw_splits(spec)
    return {f"{spec.dataset}_train": train.size_note(), f"{spec.dataset}_test": test.size_note()}


# ----------------------------------------------------------------------------- runs

def _runs(model: str, spec: DataSpec, config: TrainConfig, seeds: Sequence[int],
          options: Mapping[str, float], device: torch.device | str
          ) -> tuple[list[RunResult], ArrayDataset]:
    train, test = prepare(spec, device=device)
    runs = Runs(model, config, tuple(seeds), options=tuple(sorted(options.items())))
    return train_runs(runs, train, test), test


def solutions(setting: Setting, device: torch.device | str = "cpu"
              ) -> tuple[list[RunResult], ArrayDataset]:
    """The Section II network trained from seeds 0 and 1 side by side on MNIST."""
    return _runs("c_cnn", setting.mnist, setting.config(setting.mnist_epochs), SOLUTION_SEEDS,
                 {}, device)


def members(setting: Setting, device: torch.device | str = "cpu", dropout: float | None = None
            ) -> tuple[dict[str, RunResult], ArrayDataset]:
    """The three consensus members on MNIST (seed 0 each) and the test set.

    ``dropout`` sets both dropout layers of every member (Figure 8); None keeps each
    architecture's own rates (0.25 / 0.5), whose ``c_cnn`` run is :func:`solutions`' seed 0.
    """
    config = setting.config(setting.mnist_epochs)
    found: dict[str, RunResult] = {}
    test = None
    for arch in ARCHITECTURES:
        if dropout is None and arch == "c_cnn":
            results, test = solutions(setting, device)
        else:
            options = {} if dropout is None else {"dropout1": dropout, "dropout2": dropout}
            results, test = _runs(arch, setting.mnist, config, (0,), options, device)
        found[arch] = results[0]
    assert test is not None
    return found, test


def stacked_probs(runs: Mapping[str, RunResult]) -> torch.Tensor:
    """(n_models, n_samples, n_classes) final test probabilities, Algorithm 1's input."""
    return torch.stack([r.test_probs for r in runs.values()])


def trained_model(result: RunResult, in_shape: Sequence[int], num_classes: int,
                  device: torch.device | str = "cpu") -> nn.Module:
    """The network of a run at its final weights (runs keep them: ``keep_weights``)."""
    return load_point(result.model, result.final_state, tuple(in_shape), num_classes
                      ).to(device).eval()


# ----------------------------------------------------------------------------- Section II

def interpolation(setting: Setting, alphas: Sequence[float],
                  device: torch.device | str = "cpu") -> InterpolationPath:
    """Figure 1: test loss and accuracy of alpha * w1 + (1 - alpha) * w2 (w1: seed 0)."""
    (run_a, run_b), test = solutions(setting, device)
    a, b = (trained_model(r, test.in_shape, test.num_classes, device) for r in (run_a, run_b))
    return interpolation_path(a, b, test.x, test.y, alphas)


def reach(good: tuple[float, float]) -> tuple[float, float]:
    """(outward, inward) extent of a good alpha range around the solution it contains.

    Outward: how far the range extends beyond that solution, away from the other one;
    inward: how far towards the other one (1 if the range spans both). The paper's range
    (-1.0, 0.4) around w2 (alpha = 0) reaches 1.0 outward and 0.4 inward.
    """
    lo, hi = good
    if lo <= 0.0 and hi >= 1.0:
        return max(-lo, hi - 1.0), 1.0
    if lo <= 0.0:
        return -lo, hi
    return hi - 1.0, 1.0 - lo


# ----------------------------------------------------------------------------- Section III, V.A

@dataclass(frozen=True)
class LossDynamics:
    """Per-epoch validation curves of one run, split by correctness (Figures 2, 3 and 5).

    ``losses[e]`` holds the per-sample losses (correct, wrong) at epoch ``epochs[e]``;
    ``best_epoch`` is the epoch of least validation loss, where overfitting starts.
    """

    epochs: list[int]
    test_acc: list[float]
    test_loss: list[float]
    train_loss: list[float]
    loss_correct: list[float]
    loss_wrong: list[float]
    n_wrong: list[int]
    overlap: list[float]
    losses: list[tuple[torch.Tensor, torch.Tensor]]
    best_epoch: int
    logit_norm_best: float
    logit_norm_last: float
    logit_norms: list[float]

    @property
    def loss_rise(self) -> float:
        """Relative rise of the validation loss from its minimum to the last epoch (Figure 2)."""
        return self.test_loss[-1] / self.test_loss[self.best_epoch - 1] - 1


def phase_slope(values: Sequence[float], start_epoch: int) -> float:
    """Per-epoch slope of ``values`` (one per epoch, from epoch 1) from ``start_epoch`` on;
    NaN when fewer than two epochs remain, so a check on it fails rather than raises."""
    tail = list(values)[start_epoch - 1:]
    return trend(tail) if len(tail) >= 2 else float("nan")


def loss_dynamics(setting: Setting, device: torch.device | str = "cpu", seed: int = 0,
                  dataset: str = "usps") -> LossDynamics:
    """The Section II network's validation curves, loss split per epoch and logit norms
    (Section III), from one ``seed``. ``dataset``: "mnist" for Figure 2 (1,000 training images,
    the test set as validation set), "usps" for Figures 3 and 5 (the paper: "Figures 3 and 5
    are based on ... this dataset")."""
    if dataset not in ("mnist", "usps"):
        raise ConfigError(f"loss_dynamics: dataset must be 'mnist' or 'usps', got {dataset!r}")
    spec, epochs = ((setting.mnist, setting.mnist_epochs) if dataset == "mnist"
                    else (setting.usps, setting.usps_epochs))
    config = setting.config(epochs, per_epoch=True)
    (run,), test = _runs("c_cnn", spec, config, (seed,), {}, device)
    y = test.y.cpu()
    per_epoch = run.test_history  # (epochs, samples, classes) logits
    splits = [loss_split(z, y) for z in per_epoch]
    losses = [split_losses(z, y) for z in per_epoch]
    norms = [logit_norm(z) for z in per_epoch]
    test_loss = [float(v) for v in run.curves["test_loss"]]
    best = int(np.argmin(test_loss)) + 1
    return LossDynamics(
        epochs=list(run.curves["epoch"]), test_acc=list(run.curves["test_acc"]),
        test_loss=test_loss, train_loss=list(run.curves["train_loss"]),
        loss_correct=[s.loss_correct for s in splits], loss_wrong=[s.loss_wrong for s in splits],
        n_wrong=[s.n_wrong for s in splits], overlap=[loss_overlap(c, w) for c, w in losses],
        losses=losses, best_epoch=best, logit_norm_best=norms[best - 1],
        logit_norm_last=norms[-1], logit_norms=norms)


def loss_rises(setting: Setting, seeds: Sequence[int], device: torch.device | str = "cpu",
               dataset: str = "mnist") -> list[float]:
    """:attr:`LossDynamics.loss_rise` of the Section II network for each of ``seeds``, trained
    in one launch (the seed-to-seed spread that sets Figure 2's rise bound)."""
    if dataset not in ("mnist", "usps"):
        raise ConfigError(f"loss_rises: dataset must be 'mnist' or 'usps', got {dataset!r}")
    spec, epochs = ((setting.mnist, setting.mnist_epochs) if dataset == "mnist"
                    else (setting.usps, setting.usps_epochs))
    runs, _ = _runs("c_cnn", spec, setting.config(epochs, per_epoch=True), seeds, {}, device)
    rises = []
    for run in runs:
        loss = [float(v) for v in run.curves["test_loss"]]
        rises.append(loss[-1] / min(loss) - 1)
    return rises


# ----------------------------------------------------------------------------- Section V.B, V.C

def sweeps(runs: Mapping[str, RunResult], y: torch.Tensor, thresholds: Sequence[float]
           ) -> dict[str, ThresholdSweep]:
    """Accuracy on classified samples and coverage per threshold: each model alone (Algorithm 1
    on one model is thresholding its confidence) and the consensus of all (Figures 6-7)."""
    probs = stacked_probs(runs)
    y = y.to(probs.device)
    curves = {name: threshold_sweep(probs[i:i + 1], y, thresholds)
              for i, name in enumerate(runs)}
    curves["consensus"] = threshold_sweep(probs, y, thresholds)
    return curves


def best_at_coverage(sweep: ThresholdSweep, min_coverage: float) -> tuple[float, float, float]:
    """(threshold, accuracy, coverage) of the most accurate threshold that still classifies at
    least ``min_coverage`` of the samples: the abstract's "95% accuracy with 90% classified"."""
    ok = sweep.coverage >= min_coverage
    if not bool(ok.any()):
        return float("nan"), float("nan"), float("nan")
    i = int(torch.where(ok, sweep.accuracy, torch.full_like(sweep.accuracy, -1.0)).argmax())
    return float(sweep.thresholds[i]), float(sweep.accuracy[i]), float(sweep.coverage[i])


def dropout_sweeps(setting: Setting, thresholds: Sequence[float],
                   device: torch.device | str = "cpu") -> dict[float, ThresholdSweep]:
    """Figure 8: the consensus curve of the three members trained with each dropout rate."""
    found = {}
    for p in DROPOUTS:
        runs, test = members(setting, device, dropout=p)
        found[p] = sweeps(runs, test.y, thresholds)["consensus"]
    return found


def largest_gap(curves: Sequence[torch.Tensor]) -> float:
    """Largest difference between any two curves at one threshold (NaN entries ignored)."""
    stacked = torch.stack(list(curves))
    gaps = stacked.amax(0) - stacked.amin(0)
    return float(gaps[~gaps.isnan()].max())


# ----------------------------------------------------------------------------- Algorithm 1

def definition_mismatches(probs: torch.Tensor, thresholds: Sequence[float]) -> dict[str, int]:
    """Samples on which ``consensus`` departs from the paper's words, summed over thresholds.

    Each count restates one sentence of Section IV.B independently of the class-wise minimum:
    ``classified``: a sample is classified iff every model gives one class more than p_t;
    ``agreed_class`` (p_t >= 0.5): it is classified as that class;
    ``disagreement`` (p_t >= 0.5): a sample the models' argmaxes disagree on is rejected;
    ``single_model``: on one model the rule is thresholding its confidence (Section V.B);
    ``k_equals_n``: the k-of-n extension with k = n is Algorithm 1;
    ``k_monotone``: thresholds at which fewer models (smaller k) classify fewer samples.
    """
    n_models = probs.shape[0]
    counts = dict.fromkeys(("classified", "agreed_class", "disagreement", "single_model",
                            "k_equals_n", "k_monotone"), 0)
    top = probs.argmax(-1)
    disagree = (top != top[0]).any(0)
    for t in thresholds:
        pred = consensus(probs, t)
        agree = (probs > t).all(0)
        counts["classified"] += int(((pred != REJECT) != agree.any(-1)).sum())
        if t >= 0.5:
            counts["agreed_class"] += int((pred[agree.any(-1)]
                                           != agree.float().argmax(-1)[agree.any(-1)]).sum())
            counts["disagreement"] += int((pred[disagree] != REJECT).sum())
        for p in probs:
            alone = torch.where(p.amax(-1) > t, p.argmax(-1), torch.full_like(pred, REJECT))
            counts["single_model"] += int((consensus(p[None], t) != alone).sum())
        counts["k_equals_n"] += int((consensus(probs, t, k=n_models) != pred).sum())
        covered = [coverage(consensus(probs, t, k=k)) for k in range(1, n_models + 1)]
        counts["k_monotone"] += int(any(a < b for a, b in zip(covered, covered[1:])))
    return counts
