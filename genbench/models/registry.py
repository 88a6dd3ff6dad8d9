"""The model registry: ``build(name, in_shape, num_classes, seed=..., init=..., **options)``.

Builders describe layers only; this module owns everything common to them: argument
validation, seeding (the seed fixes the initial weights and leaves the global RNG alone),
and the optional Xavier-uniform re-initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genbench.errors import ConfigError
from genbench.models import consensus, extreme, imagenet, zhang
from genbench.models.layers import ChannelOffset
from genbench.models.spec import ModelSpec, Shape

_SPECS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (*zhang.SPECS, *imagenet.SPECS, *extreme.SPECS, *consensus.SPECS)
}
INITS = ("default", "xavier_uniform")


def list_models() -> list[str]:
    """Names accepted by :func:`build`, in registration order (by paper)."""
    return list(_SPECS)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (its paper, typical input shapes and options)."""
    if name not in _SPECS:
        raise ConfigError(f"name={name!r} is not a registered model; allowed: {list_models()}.")
    return _SPECS[name]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable tensors, not buffers such as BN running statistics)."""
    return sum(p.numel() for p in model.parameters())


def build(
    name: str,
    in_shape: Sequence[int],
    num_classes: int,
    *,
    seed: int = 0,
    init: str = "default",
    **options: object,
) -> nn.Module:
    """Build the registered model ``name`` for (C, H, W) inputs and ``num_classes`` logits.

    ``seed`` fixes the initial weights: construction runs under a forked CPU RNG seeded with
    it, so the same arguments give identical weights and the caller's RNG state is untouched.
    ``init="xavier_uniform"`` re-initialises every conv and linear weight Xavier-uniform with
    zero biases (the extreme-overfitting paper's ``torch.nn.init.xavier_uniform``).
    ``options`` are the model's own (see ``model_spec(name).options``). Any bad argument
    raises ConfigError naming it and what is allowed.
    """
    spec = model_spec(name)
    shape = _check_in_shape(in_shape)
    _check_int("num_classes", num_classes, minimum=1)
    _check_int("seed", seed, minimum=0)
    if seed >= 2**63:
        raise ConfigError(f"seed={seed} is not allowed: it must be below 2**63.")
    if init not in INITS:
        raise ConfigError(f"init={init!r} is not allowed; allowed: {list(INITS)}.")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ConfigError(
            f"option(s) {unknown} are not accepted by model {name!r}; "
            f"allowed options and defaults: {dict(spec.options)}."
        )
    with torch.random.fork_rng(devices=[]):
        # Seed only the CPU generator: torch.manual_seed would also reseed CUDA for good.
        torch.random.default_generator.manual_seed(seed)
        try:
            model = spec.builder(shape, num_classes, **options)
        except ConfigError as err:
            raise ConfigError(f"build({name!r}): {err}") from err
        if init == "xavier_uniform":
            xavier_uniform_(model)
    return model


def xavier_uniform_(model: nn.Module) -> nn.Module:
    """Xavier-uniform weights and zero biases for every conv and linear layer, in place.

    Per-channel offsets standing in for a conv bias (small Inception's batch norm) are zeroed
    too, so "biases zero" holds for every model.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, ChannelOffset):
            nn.init.zeros_(module.bias)
    return model


def _check_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field}={value!r} is not allowed: it must be an int >= {minimum}.")
    return value


def _check_in_shape(in_shape: Sequence[int]) -> Shape:
    try:
        shape = tuple(in_shape)
    except TypeError:
        shape = ()
    bad = [d for d in shape if isinstance(d, bool) or not isinstance(d, int) or d < 1]
    if len(shape) != 3 or bad:
        raise ConfigError(
            f"in_shape={in_shape!r} is not allowed: it must be (C, H, W), three positive ints, "
            "without the batch dimension."
        )
    return shape  # type: ignore[return-value]
