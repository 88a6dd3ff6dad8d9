"""Algorithm 1 of the consensus paper and its k-of-n extension: examples and properties."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from genbench.analysis import (
    REJECT,
    classified_accuracy,
    consensus,
    consensus_scores,
    coverage,
    threshold_sweep,
)
from genbench.errors import ConfigError

PROPS = settings(max_examples=30, deadline=None)


@st.composite
def prob_tensors(draw, max_models=4, max_samples=6, max_classes=5):
    """(n_models, n_samples, n_classes) softmax probabilities of bounded logits, float64."""
    shape = (
        draw(st.integers(1, max_models)),
        draw(st.integers(1, max_samples)),
        draw(st.integers(2, max_classes)),
    )
    logits = draw(arrays(np.float64, shape, elements=st.floats(-8, 8)))
    return torch.softmax(torch.from_numpy(logits), dim=-1)


thresholds = st.floats(0.0, 1.0)


def test_paper_examples_figure_4():
    """Section V.B: (a) agreement on class 8 at 0.96 minimum; (c) model 2 disagrees -> rejected."""
    agree = torch.tensor([[0.02, 0.98], [0.04, 0.96], [0.03, 0.97]])  # min over models: 0.96 on class 1
    disagree = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])  # class-wise min: [0.1, 0.2]
    probs = torch.stack([agree, disagree], dim=1)  # (3 models, 2 samples, 2 classes)
    assert consensus(probs, 0.95).tolist() == [1, REJECT]
    assert consensus(probs, 0.96).tolist() == [REJECT, REJECT]  # strictly greater than p_t
    assert consensus(probs, 0.15).tolist() == [1, 1]  # max(P_min) = 0.2 > 0.15


def test_k_of_n_is_kth_largest():
    probs = torch.tensor([[[0.9, 0.1]], [[0.6, 0.4]], [[0.2, 0.8]]], dtype=torch.float64)  # class 0: .9 .6 .2
    assert consensus_scores(probs, k=1).tolist() == [[0.9, 0.8]]
    assert consensus_scores(probs, k=2).tolist() == [[0.6, 0.4]]
    assert torch.equal(consensus_scores(probs, k=3), consensus_scores(probs))
    assert consensus(probs, 0.5, k=2).tolist() == [0]
    assert consensus(probs, 0.5).tolist() == [REJECT]


def test_accuracy_and_coverage():
    pred = torch.tensor([0, REJECT, 2, 1])
    y = torch.tensor([0, 1, 1, 1])
    assert coverage(pred) == 0.75
    assert classified_accuracy(pred, y) == pytest.approx(2 / 3)
    assert math.isnan(classified_accuracy(torch.tensor([REJECT, REJECT]), torch.tensor([0, 1])))


def test_sweep_matches_pointwise_and_nan_when_nothing_classified():
    probs = torch.softmax(torch.randn(3, 50, 4, generator=torch.Generator().manual_seed(0)) * 3, dim=-1)
    y = torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(1))
    ts = [0.0, 0.3, 0.5, 0.9, 1.0]
    sweep = threshold_sweep(probs, y, ts)
    for t, acc, cov in zip(ts, sweep.accuracy.tolist(), sweep.coverage.tolist()):
        pred = consensus(probs, t)
        assert cov == pytest.approx(coverage(pred))
        expected = classified_accuracy(pred, y)
        assert (math.isnan(acc) and math.isnan(expected)) or acc == pytest.approx(expected)
    assert math.isnan(sweep.accuracy[-1].item()) and sweep.coverage[-1].item() == 0.0


@PROPS
@given(prob_tensors(max_models=1), thresholds)
def test_one_model_is_thresholding_that_model(probs, t):
    p = probs[0]
    expected = torch.where(p.max(dim=-1).values > t, p.argmax(dim=-1), torch.tensor(REJECT))
    assert torch.equal(consensus(probs, t), expected)


@PROPS
@given(prob_tensors(max_models=1), st.integers(2, 5), thresholds)
def test_identical_models_equal_one(probs, n, t):
    many = probs.expand(n, -1, -1)
    assert torch.equal(consensus(many, t), consensus(probs, t))
    assert torch.equal(consensus(many, t, k=1), consensus(probs, t))


@PROPS
@given(prob_tensors(), st.lists(thresholds, min_size=2, max_size=8), st.data())
def test_coverage_never_grows_with_threshold(probs, ts, data):
    k = data.draw(st.integers(1, probs.shape[0]))
    y = torch.zeros(probs.shape[1], dtype=torch.long)
    cov = threshold_sweep(probs, y, sorted(ts), k=k).coverage
    assert (cov[1:] <= cov[:-1]).all()


@PROPS
@given(prob_tensors(), thresholds, st.data())
def test_fewer_required_models_never_classify_less(probs, t, data):
    k = data.draw(st.integers(1, probs.shape[0]))
    assert coverage(consensus(probs, t, k=k)) >= coverage(consensus(probs, t))


@PROPS
@given(
    st.integers(2, 6), st.data(), st.floats(0.5, 1.0), st.floats(0.501, 1.0), st.floats(0.501, 1.0)
)
def test_disagreement_above_half_is_rejected(n_classes, data, t, pa, pb):
    a = data.draw(st.integers(0, n_classes - 1))
    b = data.draw(st.integers(0, n_classes - 1).filter(lambda c: c != a))

    def confident(cls: int, p: float) -> torch.Tensor:
        row = torch.full((n_classes,), (1 - p) / (n_classes - 1), dtype=torch.float64)
        row[cls] = p
        return row

    probs = torch.stack([confident(a, pa), confident(b, pb)])[:, None, :]
    assert consensus(probs, t).tolist() == [REJECT]


@pytest.mark.parametrize(
    "bad",
    [
        torch.full((2, 3), 0.5),  # wrong ndim
        torch.tensor([[[1.2, -0.2]]]),  # negative entry
        torch.tensor([[[0.6, 0.6]]]),  # row sums to 1.2
        torch.tensor([[[float("nan"), 1.0]]]),
        torch.tensor([[[1, 0]]]),  # integer tensor
        torch.zeros(0, 3, 2),
    ],
)
def test_not_a_probability_tensor_raises(bad):
    with pytest.raises(ValueError, match="probs"):
        consensus(bad, 0.5)


@PROPS
@given(prob_tensors(), st.floats(0.01, 5.0))
def test_scaled_or_shifted_probabilities_raise(probs, delta):
    with pytest.raises(ValueError, match="probs"):
        consensus(probs * (1 + delta), 0.5)
    with pytest.raises(ValueError, match="probs"):
        consensus(probs - delta, 0.5)


@pytest.mark.parametrize("k", [0, 3, -1, 1.5, True])
def test_bad_k_raises(k):
    with pytest.raises(ConfigError, match="k must"):
        consensus(torch.full((2, 1, 2), 0.5), 0.5, k=k)


@pytest.mark.parametrize("t", [-0.1, 1.5, float("nan"), "0.5"])
def test_bad_threshold_raises(t):
    probs = torch.full((2, 1, 2), 0.5)
    with pytest.raises(ConfigError, match="threshold"):
        consensus(probs, t)
    with pytest.raises(ConfigError, match="threshold"):
        threshold_sweep(probs, torch.zeros(1, dtype=torch.long), [0.5, t] if isinstance(t, float) else [t])


@PROPS
@given(prob_tensors(), st.data())
def test_sweep_equals_pointwise_even_at_ties(probs, data):
    k = data.draw(st.integers(1, probs.shape[0]))
    n_samples, n_classes = probs.shape[1:]
    labels = st.lists(st.integers(0, n_classes - 1), min_size=n_samples, max_size=n_samples)
    y = torch.tensor(data.draw(labels), dtype=torch.long)
    best = consensus_scores(probs, k).amax(dim=-1).tolist()
    ts = data.draw(st.lists(st.sampled_from(best) | thresholds, min_size=1, max_size=5))  # include exact ties
    sweep = threshold_sweep(probs, y, ts, k=k)
    for i, t in enumerate(ts):
        pred = consensus(probs, t, k=k)
        assert sweep.coverage[i].item() == pytest.approx(coverage(pred))
        acc, expected = sweep.accuracy[i].item(), classified_accuracy(pred, y)
        assert (math.isnan(acc) and math.isnan(expected)) or acc == pytest.approx(expected)
