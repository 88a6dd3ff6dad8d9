"""Per-sample dynamics, checked against the consensus paper's own numbers (Section III)."""

import math

import pytest
import torch

from genbench.analysis import (
    logit_norm,
    loss_auroc,
    loss_overlap,
    loss_split,
    per_sample_loss,
    split_losses,
    trend,
)
from genbench.errors import ConfigError

PAPER_LOGITS = torch.tensor([0.0, 0.5, 1.0, 2.0])  # Section III's toy softmax input


def test_per_sample_loss_reproduces_section_3_example():
    """Class 4 (index 3): 0.5460 -> 0.4200 after scaling by 1.25; class 1: 2.5460 -> 2.9200."""
    logits = torch.stack([PAPER_LOGITS, PAPER_LOGITS, 1.25 * PAPER_LOGITS, 1.25 * PAPER_LOGITS])
    y = torch.tensor([3, 0, 3, 0])
    assert per_sample_loss(logits, y).tolist() == pytest.approx([0.5460, 2.5460, 0.4200, 2.9200], abs=5e-4)


def test_loss_split_hand_computed():
    logits = torch.stack([PAPER_LOGITS, PAPER_LOGITS, torch.tensor([0.0, 0.0, 0.0, 3.0])])
    y = torch.tensor([3, 0, 3])  # correct, wrong, correct
    split = loss_split(logits, y)
    expected_third = -math.log(math.exp(3) / (3 + math.exp(3)))
    assert split.n_correct == 2 and split.n_wrong == 1
    assert split.loss_correct == pytest.approx((0.5460 + expected_third) / 2, abs=5e-4)
    assert split.loss_wrong == pytest.approx(2.5460, abs=5e-4)
    right, wrong = split_losses(logits, y)
    assert right.numel() == 2 and wrong.numel() == 1


def test_loss_split_empty_group_is_nan():
    split = loss_split(PAPER_LOGITS[None], torch.tensor([3]))
    assert split.n_wrong == 0 and math.isnan(split.loss_wrong)


def test_logit_norm_hand_computed():
    logits = torch.stack([PAPER_LOGITS, torch.tensor([3.0, 4.0, 0.0, 0.0])])
    assert logit_norm(logits) == pytest.approx((math.sqrt(5.25) + 5.0) / 2)
    assert logit_norm(1.25 * logits) == pytest.approx(1.25 * logit_norm(logits))


def test_loss_overlap_extremes():
    low, high = torch.tensor([0.01, 0.1, 0.2]), torch.tensor([1.0, 2.0])
    assert loss_auroc(low, high) == 1.0
    assert loss_overlap(low, high) == 0.0
    same = torch.linspace(0, 1, 11)
    assert loss_overlap(same, same) == pytest.approx(1.0)
    assert 0 < loss_overlap(torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.6, 2.0])) < 1
    assert math.isnan(loss_overlap(low, torch.tensor([])))


def test_trend_is_least_squares_slope():
    assert trend([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert trend(torch.tensor([3.0, 1.0])) == pytest.approx(-2.0)
    assert trend([0.5, 0.5, 0.5]) == 0.0
    assert trend([0.0, 1.0, 0.0, 1.0]) == pytest.approx(0.2)
    with pytest.raises(ConfigError):
        trend([1.0])
    with pytest.raises(ConfigError):
        trend([1.0, float("nan")])


def test_bad_shapes_raise():
    with pytest.raises(ConfigError, match="logits"):
        per_sample_loss(PAPER_LOGITS, torch.tensor([1]))
    with pytest.raises(ConfigError, match="logits"):
        logit_norm(PAPER_LOGITS)
