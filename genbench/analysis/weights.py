"""Weight-space measurements (extreme-overfitting paper, Section 3).

Section 3 hypothesises that points of extreme overfitting are rarely met in ordinary training
because they lie farther from the initialization: it measures the Euclidean norm of the
difference of all vectorized weights after a fixed number of epochs (Figures 5-7). It also
states that these points are critical points of the *clean* training loss, which is checked
through the full-batch gradient norm.

A "state" here is a mapping from parameter name to tensor, such as
``dict(model.named_parameters())``, :func:`trainable_state` (a detached snapshot), or the first
dict returned by ``torch.func.stack_module_state`` (whose tensors carry a leading run
dimension K, see the ``*_stacked`` functions). Pass the trainable parameters, not a full
``state_dict()``: batch-norm running statistics are buffers, not weights the optimizer moves.
Non-floating entries (such as ``num_batches_tracked``) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from genbench.analysis._eval import chunks, eval_mode, model_device
from genbench.errors import ConfigError

State = Mapping[str, torch.Tensor]


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable parameters: take one at init to measure distance later."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _as_state(model_or_state: nn.Module | State) -> dict[str, torch.Tensor]:
    if isinstance(model_or_state, nn.Module):
        return {n: p.detach() for n, p in model_or_state.named_parameters() if p.requires_grad}
    return {n: t.detach() for n, t in model_or_state.items() if t.is_floating_point()}


def _matching(init: nn.Module | State, final: nn.Module | State) -> tuple[dict, dict]:
    a, b = _as_state(init), _as_state(final)
    if a.keys() != b.keys() or any(a[n].shape != b[n].shape for n in a):
        raise ConfigError(
            "init and final must hold the same parameters with the same shapes "
            f"(differing names: {sorted(a.keys() ^ b.keys())}); were they taken from one architecture?"
        )
    return a, b


def flat_params(model_or_state: nn.Module | State) -> torch.Tensor:
    """All trainable weights as one vector, in the state's order (the paper's "vectorized weights")."""
    state = _as_state(model_or_state)
    if not state:
        raise ConfigError("flat_params got no floating-point parameters")
    return torch.cat([t.reshape(-1) for t in state.values()])


def weight_norm(model_or_state: nn.Module | State) -> float:
    """Euclidean norm of all trainable weights together (float64 accumulation)."""
    return torch.linalg.vector_norm(flat_params(model_or_state).double()).item()


def distance_from_init(init: nn.Module | State, final: nn.Module | State) -> float:
    """Euclidean distance between two points in weight space (Section 3, Figures 5-7).

    Why: the paper's hypothesis is that extreme-overfitting points lie farther from their
    initialization than normally trained ones after the same number of epochs.
    """
    a, b = _matching(init, final)
    return torch.linalg.vector_norm(flat_params(b).double() - flat_params(a).double()).item()


def _stacked_sq_norms(state: State) -> torch.Tensor:
    """Per-run sum of squares over all entries of a stacked state: shape (K,)."""
    tensors = [t.detach() for t in state.values() if t.is_floating_point()]
    if not tensors or any(t.ndim == 0 or t.shape[0] != tensors[0].shape[0] for t in tensors):
        raise ConfigError("a stacked state needs floating tensors that all share a leading run dimension K")
    return sum(t.double().reshape(t.shape[0], -1).square().sum(dim=1) for t in tensors)


def weight_norm_stacked(state: State) -> torch.Tensor:
    """:func:`weight_norm` of each of K stacked runs at once, shape (K,), float64."""
    return _stacked_sq_norms(state).sqrt()


def distance_from_init_stacked(init: State, final: State) -> torch.Tensor:
    """:func:`distance_from_init` of each of K stacked runs at once, shape (K,), float64.

    Why: the paper's studies are 200 runs per (model, dataset); trained side by side with
    ``torch.func.stack_module_state`` their distances come out in one vectorized pass.
    """
    a, b = _matching(init, final)
    return _stacked_sq_norms({n: b[n].double() - a[n].double() for n in a}).sqrt()


def gradient_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Norm of the full-batch gradient of the mean cross-entropy of ``model`` on (x, y).

    Why: Section 3 states that extreme-overfitting points are also critical points of the loss
    on the clean data; a small full-batch gradient norm (compared with that at a normally trained
    point) is the measurable form of that statement. The gradient is accumulated over chunks of
    ``batch_size`` samples, so the whole training set (60,000 images) never sits in one graph;
    the model is evaluated in eval mode and neither its parameters nor their ``.grad`` change.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("gradient_norm needs a model with trainable parameters")
    total = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    device = model_device(model)
    with eval_mode(model), torch.enable_grad():
        for xb, yb in chunks(x, y, batch_size, device):
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / len(y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for acc, g in zip(total, grads):
                if g is not None:
                    acc += g.double()
    return torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in total])).item()
