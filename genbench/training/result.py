"""The result of one training run, and its JSON round trip.

A RunResult is what the run cache stores and what claims and analyses read: per-epoch curves,
when (epoch, step, seconds) the training set was fitted, final metrics and, on request, the
initial and final weights and the per-sample test probabilities. Tensors travel through JSON
as base64 of ``torch.save`` bytes, so a cached run restores bit for bit.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field, fields
from typing import Any

import torch

State = dict[str, torch.Tensor]

CURVE_KEYS = ("epoch", "step", "seconds", "lr", "train_loss", "train_acc", "test_loss",
              "test_acc", "train_eval_loss", "train_eval_acc")


def _empty_curves() -> dict[str, list[float | None]]:
    return {key: [] for key in CURVE_KEYS}


@dataclass
class RunResult:
    """Curves and outcome of one run.

    curves: one entry per epoch. ``train_loss``/``train_acc`` come from the epoch's own
        training passes (online, as Zhang's footnote defines it); ``test_*`` and
        ``train_eval_*`` are None at epochs without an evaluation.
    fitted: the stop rule was met (for "train_acc", confirmed by a full evaluation pass).
    fit_epoch / fit_step / fit_seconds: when it was met (None if never).
    seconds / fit_seconds: training time; torch.compile's time (first step of each new batch
        shape) is excluded and reported as ``compile_seconds``.
    final: metrics of the final model from full evaluation passes.
    test_history: with ``keep_test_history``, per-sample test logits (E, N, C), float32, at
        each of the E epochs whose ``test_acc`` curve entry is not None.
    """

    config: dict[str, Any]
    model: str = ""
    seed: int = 0
    curves: dict[str, list[Any]] = field(default_factory=_empty_curves)
    fitted: bool = False
    fit_epoch: int | None = None
    fit_step: int | None = None
    fit_seconds: float | None = None
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    compile_seconds: float = 0.0
    final: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_test: int = 0
    init_state: State | None = None
    final_state: State | None = None
    test_probs: torch.Tensor | None = None
    test_history: torch.Tensor | None = None

    _TENSOR_FIELDS = ("init_state", "final_state", "test_probs", "test_history")

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in self._TENSOR_FIELDS:
            data[name] = _encode(data[name])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "RunResult":
        data = json.loads(text)
        for name in cls._TENSOR_FIELDS:
            data[name] = _decode(data[name])
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        """The scalar outcome, for ledger notes and logs."""
        skip = ("curves", "config", *self._TENSOR_FIELDS)
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def _encode(value: Any) -> str | None:
    if value is None:
        return None
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    return torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True)
