"""Consensus-based classification (consensus paper, Section IV.B and Algorithm 1).

The paper's observation (Sections IV.A and V.B) is that a validation sample classified by
chance, through a random factor of one model, is rarely classified the same way by several
independently trained models. Algorithm 1 therefore takes the *class-wise minimum* of the
models' probabilities and classifies a sample only when the largest of these minima exceeds a
threshold ``p_t``; every other sample is rejected as ambiguous. Accuracy is then measured on
the classified samples only, and coverage is the fraction classified (Figures 6-8).

The k-of-n extension replaces the minimum with the class-wise k-th largest probability: a
class needs only k of the n models to give it more than ``p_t``. ``k = n`` is Algorithm 1 and
``k = 1`` (the class-wise maximum) is the most permissive rule.

Everything here is vectorized over samples and runs on the device of its input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genbench.errors import ConfigError

REJECT = -1
"""The prediction given to a sample that Algorithm 1 refuses to classify (line 6)."""

ROW_SUM_TOLERANCE = 1e-4
"""How far a row of probabilities may sum from 1 (float32 softmax outputs stay well inside)."""


def check_probs(probs: torch.Tensor) -> None:
    """Raise ConfigError unless ``probs`` is a (n_models, n_samples, n_classes) probability tensor.

    Why: Algorithm 1 compares probabilities with a threshold in [0, 1]; logits or a tensor of the
    wrong layout would give plausible-looking but meaningless predictions, so refuse them early.
    """
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        got = f"{probs.dtype} tensor" if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ConfigError(
            f"probs must be a floating-point torch.Tensor of probabilities, got a {got}; "
            "apply softmax to the models' logits first"
        )
    if probs.ndim != 3:
        raise ConfigError(
            f"probs must have shape (n_models, n_samples, n_classes), got shape {tuple(probs.shape)}; "
            "stack single-model outputs with torch.stack([...]) or use probs[None] for one model"
        )
    if min(probs.shape) == 0:
        raise ConfigError(f"probs must not be empty, got shape {tuple(probs.shape)}")
    # One fused pass for NaN, infinities and negatives (min/max propagate NaN), and a float32
    # row sum (its rounding error, ~1e-6, is far inside the tolerance): validation stays cheap
    # next to the consensus itself on 10 models x 100,000 samples.
    lo, hi = (v.item() for v in torch.aminmax(probs))
    if math.isnan(lo) or math.isnan(hi) or math.isinf(hi):
        raise ConfigError("probs contains NaN or infinite values; check the models' outputs")
    if lo < 0:
        raise ConfigError("probs contains negative entries: pass softmax probabilities, not logits")
    row_sums = probs.sum(dim=-1, dtype=torch.promote_types(probs.dtype, torch.float32))
    row_error = (row_sums - 1.0).abs().max().item()
    if row_error > ROW_SUM_TOLERANCE:
        raise ConfigError(
            f"probs rows must sum to 1 (within {ROW_SUM_TOLERANCE}), but one is off by {row_error:.3g}; "
            "pass softmax probabilities over the class dimension (the last one)"
        )


def _check_k(k: int | None, n_models: int) -> int:
    """Resolve ``k`` (None means Algorithm 1, k = n) and raise ConfigError if out of 1..n."""
    if k is None:
        return n_models
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_models:
        raise ConfigError(f"k must be an integer in 1..n_models={n_models} (or None for k = n), got {k!r}")
    return k


def _check_threshold(threshold: float) -> float:
    """Raise ConfigError unless ``threshold`` is a number in [0, 1]."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be a number in [0, 1] (the paper's p_t), got {threshold!r}")
    return float(threshold)


def consensus_scores(probs: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Class-wise k-th largest probability over models, shape (n_samples, n_classes).

    Why: this is ``P_min`` of Algorithm 1 line 2 when k = n; for k < n it is the probability that
    at least k models agree to exceed. The input is validated here, once per call.
    """
    check_probs(probs)
    n_models = probs.shape[0]
    k = _check_k(k, n_models)
    if k == n_models:
        return probs.amin(dim=0)
    if k == 1:
        return probs.amax(dim=0)
    return torch.kthvalue(probs, n_models - k + 1, dim=0).values


def _decide(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best consensus score per sample and its class (first class on ties), Algorithm 1 line 3-4."""
    return scores.amax(dim=-1), scores.argmax(dim=-1)


def consensus(probs: torch.Tensor, threshold: float, k: int | None = None) -> torch.Tensor:
    """Algorithm 1 (k = None or k = n) and its k-of-n extension: int64 predictions or REJECT.

    ``probs`` has shape (n_models, n_samples, n_classes). A sample is classified as the argmax of
    its consensus scores when their maximum is *strictly* greater than ``threshold`` (as in the
    paper's line 3), otherwise it gets ``REJECT`` (-1). With one model this is plain thresholding
    of that model's confidence, which the paper notes in Section V.B (Figure 7).
    """
    threshold = _check_threshold(threshold)
    best, cls = _decide(consensus_scores(probs, k))
    # Compare in float64 so that consensus and threshold_sweep agree exactly at the boundary.
    return torch.where(best.double() > threshold, cls, torch.full_like(cls, REJECT))


def _check_pred(pred: torch.Tensor) -> None:
    if not isinstance(pred, torch.Tensor) or pred.ndim != 1 or pred.is_floating_point():
        raise ConfigError("pred must be a 1-D integer tensor of classes or REJECT (-1), as consensus returns")


def coverage(pred: torch.Tensor) -> float:
    """Fraction of samples classified (not REJECT): the paper's percentage of CCS samples (Fig. 6b, 7b)."""
    _check_pred(pred)
    if pred.numel() == 0:
        return math.nan
    return (pred != REJECT).double().mean().item()


def classified_accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy on the classified samples only (Fig. 6a, 7a); NaN when no sample is classified.

    Why NaN: with nothing classified the accuracy is undefined, and reporting 0 or 1 would bias
    a curve against or in favour of high thresholds. Callers plot NaN as a gap.
    """
    _check_pred(pred)
    if y.shape != pred.shape:
        raise ConfigError(f"y must have the same shape as pred {tuple(pred.shape)}, got {tuple(y.shape)}")
    classified = pred != REJECT
    n = int(classified.sum())
    if n == 0:
        return math.nan
    return (pred[classified] == y[classified]).double().sum().item() / n


@dataclass(frozen=True)
class ThresholdSweep:
    """Accuracy on classified samples and coverage per threshold (the curves of Figures 6-8).

    All three tensors have one entry per threshold, float64, on the input's device; accuracy is
    NaN where no sample is classified.
    """

    thresholds: torch.Tensor
    accuracy: torch.Tensor
    coverage: torch.Tensor


def threshold_sweep(
    probs: torch.Tensor,
    y: torch.Tensor,
    thresholds: Sequence[float] | torch.Tensor,
    k: int | None = None,
) -> ThresholdSweep:
    """Accuracy and coverage of the consensus rule at every threshold, fully vectorized.

    Why: the paper's Figures 6-8 are these two curves. The consensus scores do not depend on the
    threshold, so they are computed once; the samples are then sorted by their best score, and
    for each threshold ``searchsorted`` finds how many exceed it while a suffix sum of
    correctness counts the right ones: O(n log n) for the whole curve, with no loop.
    """
    scores = consensus_scores(probs, k)
    if y.shape != scores.shape[:1]:
        raise ConfigError(f"y must have shape (n_samples,) = ({scores.shape[0]},), got {tuple(y.shape)}")
    values = thresholds.reshape(-1).tolist() if isinstance(thresholds, torch.Tensor) else list(thresholds)
    t = torch.tensor([_check_threshold(v) for v in values], dtype=torch.float64, device=probs.device)
    best, cls = _decide(scores)
    best_sorted, order = best.double().sort()
    correct_sorted = (cls == y.to(cls.device))[order].to(torch.float64)
    # right_above[i] = number of correct samples among sorted positions i..n-1.
    right_above = torch.cat([correct_sorted.flip(0).cumsum(0).flip(0), correct_sorted.new_zeros(1)])
    first_above = torch.searchsorted(best_sorted, t, right=True)  # first position with best > t
    n_classified = (best.numel() - first_above).to(torch.float64)
    # 0/0 gives NaN on purpose: accuracy is undefined where nothing is classified.
    return ThresholdSweep(
        thresholds=t, accuracy=right_above[first_above] / n_classified, coverage=n_classified / best.numel()
    )
