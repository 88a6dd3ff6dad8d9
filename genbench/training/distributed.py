"""torch.distributed glue: where the engine learns its rank, and the few collectives it uses.

genbench scales out on PyTorch's own machinery, launched by ``torchrun``: nothing home-made.
Under ``torchrun --nproc-per-node N`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK;
``runtime.Runtime`` reads them (and joins the process group); the collectives here take that
Runtime (``job``: anything with ``rank`` and ``world``). In a world of 1 they are the identity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def _active(job: Any) -> bool:
    return job.world > 1


def all_reduce_sum(tensor: torch.Tensor, job: Any) -> torch.Tensor:
    """Sum a tensor over ranks, in place (a no-op in a world of 1)."""
    if _active(job):
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor, job: Any) -> torch.Tensor:
    if _active(job):
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def all_gather_objects(obj: Any, job: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a world of 1)."""
    if not _active(job):
        return [obj]
    out: list[Any] = [None] * job.world
    dist.all_gather_object(out, obj)
    return out


def shard(tensor: torch.Tensor, job: Any, dim: int = 0) -> torch.Tensor:
    """This rank's shard: items ``rank, rank + world, ...`` along ``dim`` (global item i is
    local item i // world on rank i % world)."""
    if not _active(job):
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
