"""Empirical Rademacher complexity by randomization (Zhang et al. 2017, Section 2.2).

The empirical Rademacher complexity of a class H on x_1..x_n is
``E_sigma[ sup_{h in H} (1/n) sum_i sigma_i h(x_i) ]`` with i.i.d. uniform sigma_i in {-1, +1}.
Zhang et al. note that their randomization test is this quantity with the supremum replaced
by training: a network h_sigma trained on the labeling sigma. Since networks fit random labels
perfectly, the estimate is about 1, the trivial upper bound, which is why it cannot explain
generalization. The estimate is a lower bound on the true complexity (training may miss the
supremum) and averages over K drawn labelings.
"""

from __future__ import annotations

import torch

from genbench.errors import ConfigError


def rademacher_labels(
    n: int, k_draws: int, seed: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """K independent uniform +-1 labelings of n samples, shape (K, n), float32.

    Drawn on the CPU from ``torch.Generator().manual_seed(seed)`` and then moved, so a seed gives
    the same labels on every device. ``(sigmas > 0).long()`` turns them into class labels 0/1
    for training a two-class network.
    """
    for name, value in (("n", n), ("k_draws", k_draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    generator = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (k_draws, n), generator=generator)
    return (2 * bits - 1).to(torch.float32).to(device)


def signed_prediction(probs: torch.Tensor) -> torch.Tensor:
    """A two-class network's output as h(x) in [-1, 1]: ``2 * p(class 1) - 1``.

    Why this choice: it keeps the network's confidence (a hard ``sign`` of the margin is also a
    valid h and gives +-1); class 1 corresponds to sigma = +1 in :func:`rademacher_labels`.
    """
    if probs.shape[-1] != 2:
        raise ConfigError(f"signed_prediction needs two-class probabilities (last dim 2), got {probs.shape}")
    return 2.0 * probs[..., 1] - 1.0


def empirical_rademacher(predictions: torch.Tensor, sigmas: torch.Tensor) -> float:
    """``mean_k (1/n) sum_i sigma_ki h_k(x_i)`` for networks h_k trained on labelings sigma_k.

    ``predictions[k]`` are the outputs in [-1, 1] of the network trained on ``sigmas[k]`` (see
    :func:`signed_prediction`), both of shape (K, n). A network fitting every labeling exactly
    gives 1; predictions unrelated to the labels give about 0 (within ~1/sqrt(K n)).
    """
    if predictions.shape != sigmas.shape or predictions.ndim != 2 or predictions.numel() == 0:
        raise ConfigError(
            "predictions and sigmas must both have shape (K, n), "
            f"got {tuple(predictions.shape)} and {tuple(sigmas.shape)}"
        )
    if not torch.isfinite(predictions).all() or predictions.abs().max() > 1.0:
        raise ConfigError("predictions must lie in [-1, 1]; map probabilities with signed_prediction(probs)")
    if not ((sigmas == 1) | (sigmas == -1)).all():
        raise ConfigError("sigmas must be +-1 labelings, as rademacher_labels returns")
    return (predictions.double() * sigmas.to(predictions.device).double()).mean().item()
