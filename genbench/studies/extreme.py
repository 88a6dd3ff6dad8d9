"""Points of extreme overfitting (Section 4.3): the (model, dataset) studies the E.* claims share.

A study is R runs of one model on the clean training set and R runs on the corrupted set of
Algorithm 1 (the training set plus t copies of the test set with wrong labels), trained side
by side with ``fit_many`` through the run cache. Every E.S3 claim reads the same cached runs:
the runs keep their initial and final weights (``keep_weights``), and each analysis
(accuracy on the clean sets, distance from init, gradient norm, SGD escape) is applied to
those weights afterwards, so no claim trains a run a second time.

Both groups train for the same number of epochs (``config.max_epochs``, stop rule "epochs"),
because Figures 5-7 compare distances "after the same number of epochs"; when a run reached
the extreme point is read from its curves (:func:`epochs_to_fit`).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
from scipy import stats

from genbench import models
from genbench.analysis import distance_from_init, gradient_norm, weight_norm
from genbench.analysis.escape import Escape, escape, load_point
from genbench.data import ArrayDataset
from genbench.data.corruptions import extreme_overfitting_set
from genbench.errors import ConfigError
from genbench.experiment import DataSpec, Runs, prepare, seeds, train_runs
from genbench.stats import Shift, min_mannwhitney_p, shift_test  # re-exported for the claims
from genbench.training import RunResult, TrainConfig, evaluate

MODELS = ("eo_mlp", "eo_cnn", "eo_resnet")
DATASETS = ("mnist", "fashion_mnist", "cifar10")
INIT = "xavier_uniform"  # Section 4.3: torch.nn.init.xavier_uniform before every run
RUNS_ENV = "GENBENCH_RUNS"  # R of the full-scale studies when not the paper's (`genbench run --runs`)


def runs_per_group(paper_runs: int) -> int:
    """R of a full-scale study: ``$GENBENCH_RUNS`` when set, else the paper's ``paper_runs``.

    The paper's R = 200 costs 12.7 h per MLP study on a 2-core CPU (`genbench plan`), so a
    campaign on a smaller machine runs as many as fit (``genbench run --runs 20``) and every
    statistic is computed for that count; each record states R and where it came from
    (:func:`runs_source`). Read when the claim module is imported, so the plan, the campaign's
    children and pytest all see the same R.
    """
    raw = os.environ.get(RUNS_ENV, "").strip()
    if not raw:
        return paper_runs
    try:
        runs = int(raw)
    except ValueError:
        runs = 0
    if runs < 1:
        raise ConfigError(f"{RUNS_ENV}={raw!r}: must be a whole number of runs per group >= 1 "
                          f"(e.g. 20; unset it for the paper's {paper_runs})")
    return runs


def runs_source(paper_runs: int) -> str:
    """What a full-scale record says about its R: the paper's, or the override and the paper's."""
    runs = runs_per_group(paper_runs)
    if runs == paper_runs:
        return f"R = {runs} per group, the paper's"
    return f"R = {runs} per group, from {RUNS_ENV} (the paper: {paper_runs})"


@dataclass(frozen=True)
class Study:
    """R normal and R extreme runs of ``model`` on ``data`` under ``config``.

    ``config`` is shared by both groups; the study forces what its analyses need (initial and
    final weights kept, the test set evaluated every epoch, a fixed number of epochs).
    ``corruption_seed`` draws the wrong labels of Algorithm 1.
    """

    model: str
    data: DataSpec
    runs: int
    config: TrainConfig
    corruption_seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"Study.model={self.model!r}; allowed: {MODELS}")
        if self.data.dataset not in DATASETS:
            raise ConfigError(f"Study.data.dataset={self.data.dataset!r}; allowed: {DATASETS}")
        if not isinstance(self.runs, int) or self.runs < 1:
            raise ConfigError(f"Study.runs={self.runs!r}; must be an int >= 1")
        if self.config.stop != "epochs":
            raise ConfigError(f"Study.config.stop={self.config.stop!r}; both groups must train "
                              "the same number of epochs (stop='epochs')")

    @property
    def name(self) -> str:
        return f"{self.model}/{self.data.dataset}"

    @property
    def run_config(self) -> TrainConfig:
        return self.config.replace(keep_weights=True, eval_every=1)

    def with_weight_decay(self, weight_decay: float) -> "Study":
        """The same study with an l2 penalty (the optimizer's weight_decay)."""
        return replace(self, config=self.config.replace(weight_decay=weight_decay))


@dataclass(frozen=True)
class StudyData:
    """The clean train and test sets and Algorithm 1's corrupted training set."""

    train: ArrayDataset
    test: ArrayDataset
    extreme: ArrayDataset


@functools.lru_cache(maxsize=3)
def study_data(data: DataSpec, corruption_seed: int = 0,
               device: torch.device | str = "cpu") -> StudyData:
    """Prepared (preprocessed, on ``device``) clean sets, and the corrupted set built from
    them, so the test images inside it are exactly the images the test accuracy is taken on."""
    train, test = prepare(data, device=device)
    return StudyData(train, test, extreme_overfitting_set(train, test, corruption_seed))


def _runs(study: Study, train: ArrayDataset, test: ArrayDataset) -> list[RunResult]:
    spec = Runs(study.model, study.run_config, seeds=seeds(study.runs), init=INIT)
    return train_runs(spec, train, test)


def normal_runs(study: Study, data: StudyData) -> list[RunResult]:
    """R runs on the clean training set (the run cache trains them once per session)."""
    return _runs(study, data.train, data.test)


def extreme_runs(study: Study, data: StudyData) -> list[RunResult]:
    """R runs on the corrupted set of Algorithm 1 (the run cache trains them once)."""
    return _runs(study, data.extreme, data.test)


# --------------------------------------------------------------------------- Algorithm 1

@dataclass(frozen=True)
class Construction:
    """What Algorithm 1 promises about the corrupted set, measured."""

    n_train: int
    n_test: int
    repeats: int  # t = floor(n_train / n_test) + 1
    size: int
    train_unchanged: bool
    copies_identical: bool  # every copy holds the test images with the same wrong labels
    true_labels_kept: int  # corrupted labels equal to the true label (Algorithm 1: none)
    offset_counts: tuple[int, ...]  # (wrong - true) mod k, for offsets 1..k-1
    uniform_p: float  # chi-square p-value of "uniform over the other k-1 labels"


def construction(train: ArrayDataset, test: ArrayDataset, extreme: ArrayDataset) -> Construction:
    n, m, k = len(train), len(test), train.num_classes
    t = n // m + 1
    tail_x, tail_y = extreme.x[n:], extreme.y[n:]
    copies_x, copies_y = tail_x.reshape(t, m, *test.x.shape[1:]), tail_y.reshape(t, m)
    wrong = copies_y[0]
    offsets = torch.remainder(wrong - test.y, k)
    counts = torch.bincount(offsets, minlength=k)[1:].tolist()
    return Construction(
        n_train=n, n_test=m, repeats=t, size=len(extreme),
        train_unchanged=bool(torch.equal(extreme.x[:n], train.x) and
                             torch.equal(extreme.y[:n], train.y)),
        copies_identical=bool((copies_x == test.x).all() and (copies_y == wrong).all()),
        true_labels_kept=int((wrong == test.y).sum()),
        offset_counts=tuple(counts),
        uniform_p=float(stats.chisquare(counts).pvalue) if sum(counts) else math.nan)


# --------------------------------------------------------------------------- analyses

@functools.lru_cache(maxsize=32)
def _parameter_names(model: str, in_shape: tuple[int, ...], num_classes: int) -> frozenset[str]:
    net = models.build(model, in_shape, num_classes, seed=0)
    return frozenset(n for n, p in net.named_parameters() if p.requires_grad)


def _weights(study: Study, data: StudyData, state: dict[str, torch.Tensor]
             ) -> dict[str, torch.Tensor]:
    """The trainable parameters of a kept state (BatchNorm running statistics are buffers,
    not weights the optimizer moves, so they are left out of distances and norms)."""
    names = _parameter_names(study.model, data.train.in_shape, data.train.num_classes)
    return {n: t for n, t in state.items() if n in names}


def distances(study: Study, data: StudyData, runs: Sequence[RunResult]) -> list[float]:
    """Euclidean distance of each run's final weights from its initial weights."""
    return [distance_from_init(_weights(study, data, r.init_state),
                               _weights(study, data, r.final_state)) for r in runs]


def weight_norms(study: Study, data: StudyData, runs: Sequence[RunResult]) -> list[float]:
    return [weight_norm(_weights(study, data, r.final_state)) for r in runs]


def _point(study: Study, data: StudyData, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    net = load_point(study.model, state, data.train.in_shape, data.train.num_classes)
    return net.to(data.train.x.device)


def accuracies(study: Study, data: StudyData, runs: Sequence[RunResult],
               ds: ArrayDataset) -> list[float]:
    """Accuracy of each run's final weights on ``ds`` (e.g. the clean training set)."""
    return [float(evaluate(_point(study, data, r.final_state), ds).acc) for r in runs]


def gradient_norms(study: Study, data: StudyData, runs: Sequence[RunResult],
                   at: str = "final") -> list[float]:
    """Full-batch gradient norm of the clean training loss at each run's ``final`` (or
    ``init``) weights."""
    if at not in ("final", "init"):
        raise ConfigError(f"gradient_norms: at={at!r}; allowed: final, init")
    return [gradient_norm(_point(study, data, getattr(r, f"{at}_state")), data.train.x,
                          data.train.y) for r in runs]


def epochs_to_fit(result: RunResult, target: float) -> int | None:
    """The first epoch whose online training accuracy reached ``target`` (the ``train_acc``
    stop rule's trigger, read from the curves of a fixed-epoch run); None if never."""
    for epoch, acc in zip(result.curves["epoch"], result.curves["train_acc"]):
        if acc >= target:
            return int(epoch)
    return None


def escapes(study: Study, data: StudyData, runs: Sequence[RunResult],
            config: TrainConfig) -> list[Escape]:
    """SGD on the clean training set from each run's final weights (``escape`` analysis)."""
    return [escape(study.model, r.final_state, data.train, data.test, config.replace(seed=r.seed))
            for r in runs]


# --------------------------------------------------------------------------- statistics

# Shift, shift_test and min_mannwhitney_p live in genbench.stats (imported above).


def median(values: Sequence[float | None]) -> float:
    """Median of the values, a None (never reached) counting as +infinity."""
    return float(np.median([math.inf if v is None else v for v in values]))
