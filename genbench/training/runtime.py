"""Where and how a run executes, decided once: device, place in a torchrun job, precision, compile.

Why one object: the device of a rank, the process group, bf16 autocast and torch.compile used
to be decided in four places (the pytest plugin, the engine, a module global that made a rank
train "as a world of one", and the data preparation), and they disagreed on a GPU box: the
plugin handed out a bare ``cuda`` (every rank on cuda:0, which NCCL refuses), DDP got
``device_ids=[None]``. Now ``Runtime.from_env`` is the one place that maps a rank to
``cuda:LOCAL_RANK``; everything below the claim receives the Runtime and reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from genbench.errors import ConfigError

SCALES = ("smoke", "full")


def launched() -> bool:
    """True when started by torchrun (or any launcher setting WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass(frozen=True)
class Runtime:
    """This process's device and place in the job, and how a run computes on it.

    device: always with an index on CUDA (``cuda:LOCAL_RANK`` under torchrun).
    rank / world / local_rank: the torchrun coordinates (0 / 1 / 0 outside torchrun).
    precision: "fp32" or "bf16" (autocast of the training forward pass; evaluation and the
        stop rule are always judged in fp32, see ``engine.evaluate``).
    compile: torch.compile the training model.
    """

    device: torch.device = torch.device("cpu")
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    precision: str = "fp32"
    compile: bool = False

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_env(cls, spec: str | torch.device | None = None) -> "Runtime":
        """The runtime of this process.

        ``spec``: a scale ("smoke": the CPU; "full": CUDA when present), a device ("cpu",
        "cuda", "cuda:1") or None (CUDA under torchrun when present, else the CPU).
        ``$GENBENCH_DEVICE`` overrides a scale's choice. A bare "cuda" becomes
        ``cuda:LOCAL_RANK``: under torchrun every rank gets its own GPU.
        """
        override = os.environ.get("GENBENCH_DEVICE")
        if spec in SCALES or spec is None:
            gpu = torch.cuda.is_available() and (spec == "full" or (spec is None and launched()))
            spec = override or ("cuda" if gpu else "cpu")
        try:
            device = torch.device(spec)
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"device {spec!r} is not a torch device ({err}); use cpu, cuda "
                              "or cuda:N (GENBENCH_DEVICE or the device argument)") from None
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        return cls(device=device, rank=int(os.environ.get("RANK", "0")),
                   world=int(os.environ.get("WORLD_SIZE", "1")), local_rank=local_rank)

    @classmethod
    def of(cls, device: "Runtime | torch.device | str | None", data_device: torch.device
           ) -> "Runtime":
        """The runtime for a ``fit(..., device=...)`` argument: a Runtime as given, a device
        through :meth:`from_env`, None: the data's own device (or torchrun's)."""
        if isinstance(device, Runtime):
            return device
        if device is None:
            return cls.from_env(None if launched() else data_device)
        return cls.from_env(device)

    def join(self) -> "Runtime":
        """Join the process group under torchrun (nccl on CUDA, gloo otherwise), once; the
        Runtime with the group's rank and world. Outside torchrun: itself, a world of 1."""
        if self.world == 1 or not launched() or not dist.is_available():
            return dataclasses.replace(self, rank=0, world=1)
        if not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
                dist.init_process_group(backend="nccl", device_id=self.device)
            else:
                dist.init_process_group(backend="gloo")
        return dataclasses.replace(self, rank=dist.get_rank(), world=dist.get_world_size())

    def local(self) -> "Runtime":
        """This process alone (a rank training its own slice of a study): a world of one."""
        return dataclasses.replace(self, rank=0, world=1)

    def for_run(self, precision: str, compile: bool) -> "Runtime":
        """The runtime with a run's resolved precision ("auto" is bf16 on CUDA) and compile."""
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        return dataclasses.replace(self, precision=precision, compile=compile)

    # -- reading ------------------------------------------------------------------------------
    @property
    def main(self) -> bool:
        """Rank 0 alone writes the ledger, checkpoints and the progress bar."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Several ranks share this run (DDP)."""
        return self.world > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast of the training forward pass when ``precision`` is bf16."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """The run's context: the global generator (dropout draws from it) seeded without
        disturbing the caller's; cuDNN deterministic (no autotuned, nondeterministic kernel
        choice) and without TF32 (PyTorch lets cuDNN convolutions round fp32 to TF32's 10-bit
        mantissa by default; on an H200, fp32 vmap and K separate fits differed by 2e-3
        relative in BatchNorm's running means, TF32 rounding the likely cause: fp32 here means
        fp32, and the fast path is bf16 autocast); on the CPU denormal floats flushed to zero
        (small weights drift into the denormal range, where x86 runs 10-15x slower: measured
        13 vs 183 images/s on small Inception). Every switch is restored on the way out."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        flush = self.device.type == "cpu" and torch.set_flush_denormal(True)
        cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
        saved = cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = (
            True, False, False, False)
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                yield
        finally:
            cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved
            if flush:
                torch.set_flush_denormal(False)
