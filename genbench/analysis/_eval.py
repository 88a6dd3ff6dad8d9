"""Helpers for the analyses that run a model over a whole dataset in chunks themselves.

Evaluation (loss and accuracy of a model on a split) is not done here: every analysis that
evaluates a model calls the engine's :func:`genbench.training.evaluate`, the one evaluation
path. What remains is what evaluation cannot do, the full-batch gradient of
:func:`genbench.analysis.weights.gradient_norm` (60,000 MNIST images do not fit one graph in
memory, but the data may stay wherever the caller keeps it; each chunk is moved to the model's
device on its own), and the device of a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from genbench.errors import ConfigError


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def chunks(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive (x, y) chunks of at most ``batch_size`` samples, moved to ``device``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if x.shape[:1] != y.shape or y.ndim != 1 or len(y) == 0:
        raise ConfigError(
            f"x and y must hold the same non-zero number of samples, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    for xb, yb in zip(torch.split(x, batch_size), torch.split(y, batch_size)):
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (dropout off, batch-norm running stats) and restore it after.

    Why: the analyses measure the function the network computes, which must not depend on
    dropout draws, and they must leave the caller's model as they found it.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
