"""Linear interpolation between two trained networks (consensus paper, Section II, Figure 1).

Section II trains one architecture twice from different initializations and evaluates the
interpolated weights ``w = alpha * w1 + (1 - alpha) * w2``: over a range of alpha (the paper
reports -1.0 to 0.4) the interpolated networks are still good, evidence that good solutions are
abundant. Here ``model_a`` plays w1 (alpha = 1) and ``model_b`` plays w2 (alpha = 0). The
interpolated weights are loaded into a copy of ``model_a`` and evaluated by the engine's own
evaluation (:func:`genbench.training.evaluate`: fp32, eval mode, the same chunks as every
training run's test curve), so neither model is modified and there is one evaluation path.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from genbench.analysis._eval import model_device
from genbench.errors import ConfigError
from genbench.training.engine import evaluate


@dataclass(frozen=True)
class InterpolationPath:
    """Loss (mean cross-entropy) and accuracy of the interpolated network at each alpha (float64, CPU)."""

    alphas: torch.Tensor
    loss: torch.Tensor
    accuracy: torch.Tensor


def _full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers by name (persistent or not): the whole state the network
    computes with."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


@torch.no_grad()
def _load(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy ``state`` into ``model``'s own tensors in place (parameters and every buffer)."""
    for name, tensor in _full_state(model).items():
        tensor.copy_(state[name])
    return model


def interpolate_state(
    state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``alpha * a + (1 - alpha) * b`` for every floating tensor, parameters and buffers alike.

    Batch-norm running statistics are interpolated the same way as the weights, so the network
    at alpha is one consistent model. Integer buffers (``num_batches_tracked``) cannot be
    interpolated and do not affect eval mode; they are taken from ``state_a``.
    """
    if state_a.keys() != state_b.keys() or any(state_a[n].shape != state_b[n].shape for n in state_a):
        raise ConfigError("model_a and model_b must share one architecture (same parameter names and shapes)")
    return {
        name: torch.lerp(state_b[name].detach(), state_a[name].detach(), alpha)
        if state_a[name].is_floating_point()
        else state_a[name]
        for name in state_a
    }


def interpolation_path(
    model_a: nn.Module,
    model_b: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    alphas: Sequence[float] | torch.Tensor,
) -> InterpolationPath:
    """Loss and accuracy of ``alpha * w_a + (1 - alpha) * w_b`` for each alpha (Figure 1).

    The networks are evaluated in eval mode (dropout off, running batch-norm statistics), as the
    paper's test curves are, by the engine's :func:`~genbench.training.evaluate` on the device
    of ``model_a`` (the data is moved there once); both models are left as they were.
    """
    alpha_list = [float(a) for a in torch.as_tensor(alphas, dtype=torch.float64).reshape(-1).tolist()]
    if not alpha_list or not all(math.isfinite(a) for a in alpha_list):
        raise ConfigError(f"alphas must be a non-empty sequence of finite numbers, got {alpha_list}")
    if x.shape[:1] != y.shape or y.ndim != 1 or len(y) == 0:
        raise ConfigError(
            f"x and y must hold the same non-zero number of samples, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    state_a, state_b = _full_state(model_a), _full_state(model_b)
    device = model_device(model_a)
    data = torch.utils.data.TensorDataset(x.to(device, torch.float32), y.to(device))
    net = copy.deepcopy(model_a)  # holds each interpolated state in turn
    losses, accuracies = [], []
    for alpha in alpha_list:
        result = evaluate(_load(net, interpolate_state(state_a, state_b, alpha)), data, device=device)
        losses.append(result.loss)
        accuracies.append(result.acc)
    columns = (alpha_list, losses, accuracies)
    return InterpolationPath(*(torch.tensor(v, dtype=torch.float64) for v in columns))


def good_range(
    alphas: Sequence[float] | torch.Tensor, accuracies: Sequence[float] | torch.Tensor, level: float
) -> tuple[float, float]:
    """The contiguous range of alpha, around the two solutions, where accuracy >= ``level``.

    Alphas are sorted; a "run" is a maximal stretch of consecutive grid points whose accuracy is
    at least ``level``. The range returned is the run that contains a grid point with alpha in
    [0, 1] (the solutions and the segment between them); if a barrier splits [0, 1] into several
    runs, the widest is returned (the lower one on a tie). ``(nan, nan)`` if no grid point in
    [0, 1] reaches ``level``. The paper's answer for MNIST is about (-1.0, 0.4) (Section II).
    """
    a = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    acc = torch.as_tensor(accuracies, dtype=torch.float64).reshape(-1)
    if a.shape != acc.shape or a.numel() == 0:
        raise ConfigError(
            f"alphas and accuracies must be non-empty and of equal length, got {a.numel()} and {acc.numel()}"
        )
    order = torch.argsort(a)
    a, good = a[order].tolist(), (acc[order] >= level).tolist()
    runs: list[tuple[float, float]] = []
    start = None
    for i, ok in enumerate(good + [False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            lo, hi = a[start], a[i - 1]
            if any(0.0 <= v <= 1.0 for v in a[start:i]):
                runs.append((lo, hi))
            start = None
    if not runs:
        return (math.nan, math.nan)
    return max(runs, key=lambda r: (r[1] - r[0], -r[0]))
