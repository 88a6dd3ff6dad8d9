"""Escape from a point: plain SGD on the clean training set, started at given weights.

Why (extreme-overfitting paper, Section 3 and Conclusion): "the stochastic gradient descent
algorithm launched from the point of extreme overfitting usually converges to a critical point
with a good generalizing ability", which the paper reads as extreme points being very narrow
indentations of the loss surface. The measurable form is the test accuracy curve of SGD on the
clean data, started at the point. This analysis trains through ``genbench.training.fit`` (no
loop of its own), so it runs on any model the registry builds, on any device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from genbench import models
from genbench.data import ArrayDataset
from genbench.errors import ConfigError
from genbench.training import RunResult, TrainConfig, evaluate, fit


@dataclass(frozen=True)
class Escape:
    """The test accuracy of the start point (epoch 0) and after each evaluated SGD epoch."""

    epochs: tuple[int, ...]
    test_acc: tuple[float, ...]
    result: RunResult

    @property
    def start_test_acc(self) -> float:
        return self.test_acc[0]

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1]


def load_point(model: str, state: Mapping[str, torch.Tensor], in_shape: tuple[int, ...],
               num_classes: int, *, options: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """A registry model (``genbench.models.build``) holding the weights (and buffers) ``state``.

    The build seed is irrelevant: every parameter and buffer is overwritten by ``state``, and a
    state of another architecture fails loudly in ``load_state_dict``.
    """
    net = models.build(model, tuple(in_shape), num_classes, seed=0, **dict(options or {}))
    net.load_state_dict({name: t.detach().clone() for name, t in state.items()})
    return net


def escape(model: str, state: Mapping[str, torch.Tensor], train: ArrayDataset,
           test: ArrayDataset, config: TrainConfig, *, options: Mapping[str, Any] | None = None,
           device: torch.device | str | None = None) -> Escape:
    """Train ``model`` from ``state`` with SGD ``config`` on ``train`` (the clean, preprocessed
    training set) and return its test accuracy curve on ``test``, start point included.

    ``config.optimizer`` must be "sgd": the claim is about stochastic gradient descent, and an
    adaptive optimizer would test something else.
    """
    if config.optimizer != "sgd":
        raise ConfigError(f"escape: config.optimizer={config.optimizer!r}; the escape analysis "
                          "runs SGD (TrainConfig(optimizer='sgd', ...))")
    dev = torch.device(device) if device is not None else train.x.device
    net = load_point(model, state, train.in_shape, train.num_classes, options=options).to(dev)
    start = float(evaluate(net, test, config, device=dev).acc)
    result = fit(net, train, config, test, device=dev, name=model)
    curve = [(e, a) for e, a in zip(result.curves["epoch"], result.curves["test_acc"])
             if a is not None]
    return Escape(epochs=(0, *(e for e, _ in curve)), test_acc=(start, *(a for _, a in curve)),
                  result=result)
