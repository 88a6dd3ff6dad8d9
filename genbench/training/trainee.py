"""What the training loop trains: one module, or K modules of one architecture stacked.

The engine has one loop. It sees K models through this small interface: a forward pass on a
(K, batch, ...) tensor (or on a batch shared by all K), the parameters for the optimizer, and
per-model state. ``SingleTrainee`` is the plain module (K = 1); ``StackedTrainee`` stacks K
modules with ``torch.func.stack_module_state`` and runs them in one vectorized launch with
``vmap(functional_call)``, which is what makes 200-seed studies cheap on a GPU.
"""

from __future__ import annotations

import copy
from typing import Iterable, Protocol

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

State = dict[str, torch.Tensor]


class Trainee(Protocol):
    k: int

    def parameters(self) -> list[torch.Tensor]: ...

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor: ...

    def train(self, mode: bool = True) -> None: ...

    def state(self) -> State: ...

    def load(self, state: State) -> None: ...

    def model_state(self, k: int) -> State: ...


def _clone_state(state: Iterable[tuple[str, torch.Tensor]]) -> State:
    return {name: t.detach().clone() for name, t in state}


class SingleTrainee:
    """One nn.Module. ``forward`` takes (1, batch, ...) or a shared batch; returns (1, batch, C)."""

    k = 1

    def __init__(self, model: nn.Module, compiled: nn.Module | None = None) -> None:
        self.model = model
        self._call = compiled if compiled is not None else model

    def parameters(self) -> list[torch.Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        return self._call(x if shared else x[0]).unsqueeze(0)

    def train(self, mode: bool = True) -> None:
        self.model.train(mode)

    def state(self) -> State:
        return _clone_state(self.model.state_dict().items())

    def load(self, state: State) -> None:
        self.model.load_state_dict(state)

    def model_state(self, k: int) -> State:
        return self.state()


def _fp32_input(_: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """BatchNorm's input in fp32 when autocast made it bf16 or fp16 (see StackedTrainee)."""
    x = args[0]
    return (x.float(), *args[1:]) if x.dtype in (torch.bfloat16, torch.float16) else args


class StackedTrainee:
    """K modules of one architecture as stacked tensors, run with vmap(functional_call).

    Buffers are stacked too: BatchNorm's running statistics (and its batch counter) are
    updated in place per model under vmap, so a BatchNorm network trains here exactly as K
    separate ones would. Dropout draws with ``randomness="different"`` from the global
    generator: different masks per model, not the masks of K separate runs (see
    ``engine.fit_many``).

    BatchNorm runs in fp32 here under bf16 autocast (its input is cast up by a forward
    pre-hook): vmap's batch rule for BatchNorm's backward on CUDA refuses a bf16 input with
    fp32 running statistics ("Expected running_mean to have type BFloat16 but got Float",
    eo_resnet x20 on an H200, torch 2.11), and fp32 statistics are what mixed precision keeps
    anyway. The next layer's autocast casts the output back down.

    ``compile``: torch.compile the two vectorized calls (static shapes). Dynamo traces through
    vmap and functional_call, BatchNorm's in-place buffer updates included, so the compiled
    launch computes what the eager one does (checked on the CPU to 4e-7 for eo_resnet)."""

    def __init__(self, models: list[nn.Module], compile: bool = False) -> None:
        self.k = len(models)
        params, buffers = stack_module_state(models)
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        for m in self.base.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.register_forward_pre_hook(_fp32_input)

        def call(p: State, b: State, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (p, b), (x,))

        self._per_model = torch.vmap(call, in_dims=(0, 0, 0), randomness="different")
        self._shared = torch.vmap(call, in_dims=(0, 0, None), randomness="different")
        if compile:
            self._per_model = torch.compile(self._per_model, dynamic=False)
            self._shared = torch.compile(self._shared, dynamic=False)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        fn = self._shared if shared else self._per_model
        return fn(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def state(self) -> State:
        return _clone_state([*self.params.items(), *self.buffers.items()])

    def load(self, state: State) -> None:
        with torch.no_grad():
            for name, t in [*self.params.items(), *self.buffers.items()]:
                t.copy_(state[name])

    def model_state(self, k: int) -> State:
        return {n: t[k].detach().clone() for n, t in [*self.params.items(), *self.buffers.items()]}
