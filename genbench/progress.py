"""Training progress as events, for whoever listens (the pytest plugin's live lines).

Why not the tqdm bar alone: pytest captures a test's output, and tqdm turns itself off when
output is not a terminal, so a claim training for minutes showed nothing. The engine emits one
:class:`Epoch` per epoch here; listeners (registered with :func:`listen`) decide how to show it.
With no listener, :func:`emit` is a no-op costing one list check. A listener that raises is
dropped (progress display must never break a training run).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True)
class Epoch:
    """The end of one epoch of one training launch (K models trained side by side)."""

    name: str  # the model's name (architecture), as given to fit/fit_many
    epoch: int  # epochs done
    max_epochs: int
    models: int  # K models in this launch
    active: int  # models still training (not yet stopped)
    loss: float  # the lowest training loss of the K models this epoch
    acc: float  # the highest online training accuracy of the K models this epoch
    seconds: float  # training seconds so far in this launch


Listener = Callable[[Epoch], None]
_listeners: list[Listener] = []


def emit(event: Epoch) -> None:
    """Tell every listener; a listener that raises an Exception is removed."""
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a display must not stop training
            _listeners.remove(listener)


@contextlib.contextmanager
def listen(listener: Listener) -> Iterator[Listener]:
    """Call ``listener`` with every :class:`Epoch` emitted inside the ``with`` block."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        if listener in _listeners:
            _listeners.remove(listener)
