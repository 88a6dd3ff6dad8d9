"""What the registry knows about one architecture: who builds it, for which paper and inputs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from torch import nn

Shape = tuple[int, int, int]
"""An input shape (C, H, W), without the batch dimension."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture.

    ``builder(in_shape, num_classes, **options)`` returns the module with PyTorch's default
    initialisation; seeding and re-initialisation are the registry's job, so that every
    builder stays a plain description of layers. The allowed options and their defaults are
    read from the builder's keyword-only parameters, so they are written down only once.
    """

    name: str
    builder: Callable[..., nn.Module]
    paper: str
    in_shapes: tuple[Shape, ...]
    """The input shapes the paper uses the model on (the first is the typical one)."""

    @property
    def options(self) -> Mapping[str, object]:
        """The builder's options and their defaults."""
        params = inspect.signature(self.builder).parameters.values()
        return MappingProxyType(
            {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        )
