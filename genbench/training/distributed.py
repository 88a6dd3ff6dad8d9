"""torch.distributed glue: where the engine learns its rank, and the few collectives it uses.

genbench scales out on PyTorch's own machinery, launched by ``torchrun``: nothing home-made.
Under ``torchrun --nproc-per-node N`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK;
the first ``fit`` joins the process group (nccl on GPUs, gloo on CPUs) and every rank then
computes its shard of every global batch, with DistributedDataParallel averaging gradients.
Outside torchrun everything here is the identity (rank 0 of a world of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


# Set while a rank trains its own slice of a study (fit_many under torchrun): the engine then
# trains as a world of one, with no gradient exchange.
FORCE_LOCAL = False


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 alone writes the ledger, checkpoints and the progress bar."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched() -> bool:
    """True when started by torchrun (or any launcher setting WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_device() -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` on a GPU box, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def current(device: torch.device | None = None) -> Dist:
    """The job this process belongs to, joining the process group on first use under torchrun
    (backend nccl for a CUDA device, gloo otherwise)."""
    if FORCE_LOCAL or not dist.is_available():
        return Dist()
    if not dist.is_initialized() and launched():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    if not dist.is_initialized():
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size())


def all_reduce_sum(tensor: torch.Tensor, job: Dist) -> torch.Tensor:
    """Sum a tensor over ranks, in place (a no-op in a world of 1)."""
    if job.active:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor, job: Dist) -> torch.Tensor:
    if job.active:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def all_gather_objects(obj: Any, job: Dist) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a world of 1)."""
    if not job.active:
        return [obj]
    out: list[Any] = [None] * job.world
    dist.all_gather_object(out, obj)
    return out


def shard(tensor: torch.Tensor, job: Dist, dim: int = 0) -> torch.Tensor:
    """This rank's shard: items ``rank, rank + world, ...`` along ``dim`` (global item i is
    local item i // world on rank i % world)."""
    if not job.active:
        return tensor
    index = torch.arange(job.rank, tensor.shape[dim], job.world, device=tensor.device)
    return tensor.index_select(dim, index)


def unshard(parts: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """Inverse of :func:`shard`: interleave the ranks' shards back into global order."""
    world = len(parts)
    if world == 1:
        return parts[0]
    total = sum(p.shape[dim] for p in parts)
    shape = list(parts[0].shape)
    shape[dim] = total
    out = parts[0].new_empty(shape)
    for rank, part in enumerate(parts):
        index = torch.arange(rank, total, world, device=out.device)
        out.index_copy_(dim, index, part.to(out.device))
    return out
