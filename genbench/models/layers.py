"""Building blocks shared by the papers' models: MLP stacks, a per-channel offset, and the
shape probe that sizes fully connected layers from ``in_shape``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from genbench.errors import ConfigError
from genbench.models.spec import Shape


class ChannelOffset(nn.Module):
    """A learnable per-channel offset added to an NCHW map.

    Placed after ``BatchNorm2d(affine=False)`` it gives TensorFlow's default batch norm
    (``center=True, scale=False``): one bias-like vector per convolution, which is what makes
    Zhang's small Inception and its no-BatchNorm variant have the same parameter count.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in x's dtype: an fp32 offset added to a bf16 map (autocast) would promote it, and
        # every later layer of the network, to fp32
        return x + self.bias.view(1, -1, 1, 1).to(x.dtype)


def mlp(
    in_features: int,
    hidden: Sequence[int],
    num_classes: int,
    dropout: Sequence[float] = (),
) -> nn.Sequential:
    """Flatten -> [Linear -> ReLU (-> Dropout)] per hidden width -> Linear to logits.

    ``dropout[i]``, when given, follows the i-th hidden layer.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    widths = [in_features, *hidden]
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        if i < len(dropout):
            layers.append(nn.Dropout(dropout[i]))
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)


def flat_size(in_shape: Shape) -> int:
    """Number of input features of an MLP reading a (C, H, W) image."""
    c, h, w = in_shape
    return c * h * w


def output_shape(module: nn.Module, in_shape: Shape) -> tuple[int, ...]:
    """Shape (without batch) of ``module``'s output for one ``in_shape`` input.

    Runs on the meta device, so it computes nothing, touches no RNG and leaves every weight
    and running statistic alone; an input too small for the module's kernels and pools
    becomes a ConfigError at build time instead of a shape error at the first batch.
    """
    meta = {
        k: v.to("meta")
        for k, v in itertools.chain(module.named_parameters(), module.named_buffers())
    }
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = functional_call(module, meta, (torch.zeros((1, *in_shape), device="meta"),))
    except RuntimeError as err:
        raise ConfigError(
            f"in_shape={tuple(in_shape)} is too small (or has the wrong channel count) for "
            f"this network: {err}. Use one of the input shapes the model is registered for."
        ) from err
    finally:
        module.train(was_training)
    return tuple(out.shape[1:])


def check_probability(field: str, value: object) -> float:
    """A dropout rate must be a real number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(
            f"{field}={value!r} is not allowed: a dropout rate is a number in [0, 1)."
        )
    return float(value)


def check_positive_int(field: str, value: object) -> int:
    """A count (of blocks, filters) must be a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field}={value!r} is not allowed: it must be a positive int.")
    return value
