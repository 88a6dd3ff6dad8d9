"""Interpolation between two networks (consensus paper, Section II) and its good range."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genbench.analysis import good_range, interpolate_state, interpolation_path
from genbench.errors import ConfigError
from genbench.training.sources import EVAL_BATCH


def tiny_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))


def data(n: int = 40):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def own_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).double().mean().item()


def trained_bn(seed: int) -> nn.Sequential:
    """A net whose batch-norm running statistics differ from the defaults, so buffers matter."""
    net = tiny_net(seed)
    with torch.no_grad():
        net(torch.randn(64, 6, generator=torch.Generator().manual_seed(seed)) * 3 + seed)
    return net


def test_endpoints_equal_each_models_own_metrics():
    a, b = trained_bn(1), trained_bn(2)
    a.train()
    x, y = data()
    path = interpolation_path(a, b, x, y, [1.0, 0.0, 0.5])
    assert path.alphas.tolist() == [1.0, 0.0, 0.5]
    for i, model in ((0, a), (1, b)):
        loss, acc = own_metrics(model, x, y)
        assert path.loss[i].item() == pytest.approx(loss, rel=1e-5)
        assert path.accuracy[i].item() == acc
    a.train()
    interpolation_path(a, b, x, y, [0.5])
    assert a.training, "the caller's train/eval mode is restored"


def test_path_does_not_change_models_and_spans_the_engines_chunks():
    """More samples than one evaluation chunk (EVAL_BATCH): the engine's chunked evaluation
    equals one whole-set forward pass, and neither model's state or mode changes."""
    a, b = trained_bn(1), trained_bn(2)
    b.train()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (a, b)]
    x, y = data(2 * EVAL_BATCH + 7)
    path = interpolation_path(a, b, x, y, [-1.0, 0.25, 2.0, 0.0])
    loss, acc = own_metrics(copy.deepcopy(b), x, y)
    assert path.loss[3].item() == pytest.approx(loss, rel=1e-5) and path.accuracy[3].item() == acc
    for model, state in zip((a, b), before):
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        assert model.training


def test_path_evaluates_the_interpolated_network():
    """At alpha = 0.25 the path is the metrics of a network holding 0.25 a + 0.75 b."""
    a, b = trained_bn(1), trained_bn(2)
    x, y = data()
    mid = tiny_net(3)
    mid.load_state_dict(interpolate_state(a.state_dict(), b.state_dict(), 0.25))
    loss, acc = own_metrics(mid, x, y)
    path = interpolation_path(a, b, x, y, [0.25])
    assert path.loss[0].item() == pytest.approx(loss, rel=1e-5) and path.accuracy[0].item() == acc
    with pytest.raises(ConfigError, match="same non-zero number"):
        interpolation_path(a, b, x, y[:-1], [0.5])


def test_interpolate_state_is_convex_combination_of_params_and_buffers():
    a, b = trained_bn(1).state_dict(), trained_bn(2).state_dict()
    mid = interpolate_state(a, b, 0.25)
    for name in ("0.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(mid[name], 0.25 * a[name] + 0.75 * b[name])
    assert torch.equal(mid["1.num_batches_tracked"], a["1.num_batches_tracked"])
    with pytest.raises(ConfigError, match="architecture"):
        interpolate_state(a, {k: v for k, v in b.items() if k != "0.weight"}, 0.5)


def test_good_range():
    alphas = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    acc = [0.1, 0.5, 0.95, 0.97, 0.98, 0.96, 0.97, 0.3, 0.97]
    assert good_range(alphas, acc, 0.9) == (-1.0, 1.0)
    # shuffled input gives the same answer
    order = [3, 0, 8, 5, 1, 7, 2, 6, 4]
    assert good_range([alphas[i] for i in order], [acc[i] for i in order], 0.9) == (-1.0, 1.0)
    # a barrier inside [0, 1]: the wider run wins
    barrier = [0.1, 0.5, 0.95, 0.97, 0.98, 0.2, 0.97, 0.3, 0.97]
    assert good_range(alphas, barrier, 0.9) == (-1.0, 0.0)
    lo, hi = good_range(alphas, [0.0] * 9, 0.9)
    assert math.isnan(lo) and math.isnan(hi)
