"""Weight-space measurements (extreme-overfitting paper, Section 3) and the Rademacher estimate."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import stack_module_state

from genbench.analysis import (
    distance_from_init,
    distance_from_init_stacked,
    empirical_rademacher,
    flat_params,
    gradient_norm,
    rademacher_labels,
    signed_prediction,
    trainable_state,
    weight_norm,
    weight_norm_stacked,
)
from genbench.errors import ConfigError


def tiny_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.3), nn.Linear(5, 3)
    )


def perturbed(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` moved in weight space, as training would."""
    g = torch.Generator().manual_seed(seed)
    moved = tiny_net(0)
    moved.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(torch.randn(p.shape, generator=g))
        moved[2].running_mean.add_(100.0)  # a buffer: must not count as a weight
    return moved


def test_distance_and_norm_match_manual_computation():
    init = tiny_net(1)
    snapshot = trainable_state(init)
    final = perturbed(init, 5)
    pairs = zip(final.parameters(), init.parameters())
    manual = math.sqrt(sum(((pf.double() - pi.double()) ** 2).sum().item() for pf, pi in pairs))
    assert distance_from_init(snapshot, final) == pytest.approx(manual, rel=1e-9)
    assert distance_from_init(init, dict(final.named_parameters())) == pytest.approx(manual, rel=1e-9)
    norm = math.sqrt(sum((p.double() ** 2).sum().item() for p in final.parameters()))
    assert weight_norm(final) == pytest.approx(norm, rel=1e-9)
    assert flat_params(final).numel() == sum(p.numel() for p in final.parameters())
    with pytest.raises(ConfigError, match="same parameters"):
        distance_from_init(snapshot, {"0.weight": torch.zeros(1)})


def test_stacked_equals_per_run():
    inits = [tiny_net(s) for s in range(4)]
    finals = [perturbed(m, 10 + s) for s, m in enumerate(inits)]
    init_params, _ = stack_module_state(inits)
    final_params, _ = stack_module_state(finals)
    stacked = distance_from_init_stacked(init_params, final_params)
    per_run = [distance_from_init(i, f) for i, f in zip(inits, finals)]
    assert stacked.shape == (4,) and stacked.tolist() == pytest.approx(per_run, rel=1e-9)
    norms = [weight_norm(f) for f in finals]
    assert weight_norm_stacked(final_params).tolist() == pytest.approx(norms, rel=1e-9)


def test_gradient_norm_equals_direct_autograd_and_is_chunk_independent():
    model = tiny_net(3)
    model.train()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, 4, generator=g), torch.randint(0, 3, (50,), generator=g)
    before = [p.detach().clone() for p in model.parameters()]

    model.eval()
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    direct = torch.linalg.vector_norm(torch.cat([gr.reshape(-1) for gr in grads])).item()
    model.train()

    norms = [gradient_norm(model, x, y, batch_size=b) for b in (4, 7, 50, 4096)]
    assert norms == pytest.approx([direct] * 4, rel=1e-5)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_rademacher_labels_are_seeded_signs():
    s = rademacher_labels(1000, 3, seed=7)
    assert s.shape == (3, 1000) and set(s.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(s, rademacher_labels(1000, 3, seed=7))
    assert not torch.equal(s, rademacher_labels(1000, 3, seed=8))
    assert abs(s.mean().item()) < 0.1
    with pytest.raises(ConfigError, match="k_draws"):
        rademacher_labels(10, 0, seed=0)


def test_rademacher_perfect_fit_is_one_and_random_is_zero():
    sigmas = rademacher_labels(2000, 5, seed=0)
    assert empirical_rademacher(sigmas.clone(), sigmas) == 1.0
    probs = torch.stack([(1 - sigmas) / 2, (1 + sigmas) / 2], dim=-1)  # p(class 1) = 1 iff sigma = +1
    assert empirical_rademacher(signed_prediction(probs), sigmas) == 1.0
    unrelated = rademacher_labels(2000, 5, seed=1)
    assert abs(empirical_rademacher(unrelated, sigmas)) < 3 / math.sqrt(sigmas.numel())
    assert empirical_rademacher(torch.zeros_like(sigmas), sigmas) == 0.0
    with pytest.raises(ConfigError, match="\\[-1, 1\\]"):
        empirical_rademacher(2 * sigmas, sigmas)
    with pytest.raises(ConfigError, match="sigmas"):
        empirical_rademacher(sigmas, 0.5 * sigmas)
