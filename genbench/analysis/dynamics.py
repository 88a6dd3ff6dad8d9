"""Per-sample training dynamics (consensus paper, Sections III and V.A).

Section III explains overfitting without a change in validation accuracy: the weights keep
growing, the inputs to the softmax (the logits) grow in magnitude, the loss of correctly
classified samples falls and that of misclassified samples rises (Figures 2-3). Section V.A
shows that the per-sample losses of the two groups barely overlap (Figure 5). The functions
here compute those quantities from one epoch's logits; a claim calls them once per epoch and
uses :func:`trend` to say whether a curve rises or falls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from genbench.errors import ConfigError
from genbench.stats import common_language


def _check_logits(logits: torch.Tensor, y: torch.Tensor) -> None:
    if logits.ndim != 2 or y.shape != logits.shape[:1]:
        raise ConfigError(
            f"logits must have shape (n_samples, n_classes) and y shape (n_samples,), "
            f"got {tuple(logits.shape)} and {tuple(y.shape)}"
        )


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every sample, shape (n_samples,): the unit of Figures 3 and 5."""
    _check_logits(logits, y)
    # At least float32: bf16 logits from autocast would round the small losses of Figure 5 away.
    precise = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(precise, y, reduction="none")


def split_losses(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample losses of the correctly and of the incorrectly classified samples.

    Why: Section III attributes the rise of the validation loss to the misclassified samples
    alone; Section V.A compares the two groups' loss distributions.
    """
    loss = per_sample_loss(logits, y)
    correct = logits.argmax(dim=1) == y
    return loss[correct], loss[~correct]


class LossSplit(NamedTuple):
    """Mean validation loss over correctly / incorrectly classified samples (NaN if a group is empty)."""

    loss_correct: float
    loss_wrong: float
    n_correct: int
    n_wrong: int


def _mean_or_nan(values: torch.Tensor) -> float:
    return values.double().mean().item() if values.numel() else math.nan


def loss_split(logits: torch.Tensor, y: torch.Tensor) -> LossSplit:
    """Split the mean validation loss into its correct and wrong parts (Figure 3, one epoch)."""
    right, wrong = split_losses(logits, y)
    return LossSplit(_mean_or_nan(right), _mean_or_nan(wrong), right.numel(), wrong.numel())


def logit_norm(logits: torch.Tensor) -> float:
    """Mean L2 norm of the softmax inputs over samples.

    Why: Section III's mechanism is that this magnitude grows during overfitting, which makes
    the softmax more peaked (the paper's 1.25x scaling example).
    """
    if logits.ndim != 2:
        raise ConfigError(f"logits must have shape (n_samples, n_classes), got {tuple(logits.shape)}")
    return torch.linalg.vector_norm(logits.double(), dim=1).mean().item()


def loss_auroc(loss_correct: torch.Tensor, loss_wrong: torch.Tensor) -> float:
    """P(a misclassified sample's loss > a correctly classified one's), ties counting 1/2.

    This is the Mann-Whitney U statistic of (wrong, correct) divided by n_wrong * n_correct,
    i.e. the AUROC of telling the two groups apart by their loss. NaN if a group is empty.
    """
    wrong = loss_wrong.detach().double().cpu().numpy().ravel()
    right = loss_correct.detach().double().cpu().numpy().ravel()
    return common_language(wrong, right)


def loss_overlap(loss_correct: torch.Tensor, loss_wrong: torch.Tensor) -> float:
    """Overlap of the two per-sample loss distributions, in [0, 1]: ``2 * min(A, 1 - A)``.

    ``A`` is :func:`loss_auroc`. The measure is 0 when every misclassified sample has a higher
    loss than every correctly classified one (no overlap, the claim of Section V.A / Figure 5)
    and 1 when the two distributions cannot be told apart. It is chosen over a histogram overlap
    because it needs no binning, so the number does not depend on a free parameter. NaN if a
    group is empty.
    """
    auroc = loss_auroc(loss_correct, loss_wrong)
    return 2.0 * min(auroc, 1.0 - auroc)


def trend(values: Sequence[float] | torch.Tensor) -> float:
    """Least-squares slope of ``values`` against their index (per epoch).

    Why: the claims of Section III are about direction ("the loss of misclassified samples
    rises"); a fitted slope over all epochs says so without depending on two noisy endpoints.
    """
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if v.numel() < 2 or not torch.isfinite(v).all():
        raise ConfigError(f"trend needs at least 2 finite values, got {v.tolist()}")
    x = torch.arange(v.numel(), dtype=torch.float64)
    x = x - x.mean()
    return ((x * (v - v.mean())).sum() / (x * x).sum()).item()
