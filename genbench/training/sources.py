"""Where the training loop's batches come from.

``ResidentSource`` is the engine's fast path: the whole split sits on the device; each epoch
draws one permutation per model on the device, and a batch is an index into resident tensors
(no DataLoader, no per-batch host-to-device copy). Under torchrun every rank holds only its
shard of the split (global item i lives on rank i % world) and computes the part of every
global batch that it holds, so N ranks see exactly the batches of one process.

``StreamSource`` serves data that cannot be resident (ImageNet: 1.28M images): a DataLoader
decodes in worker processes, a DistributedSampler splits the data over ranks, and images are
preprocessed and augmented on the device.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Protocol

import torch
from torch.utils.data import DataLoader, DistributedSampler

from genbench.training import augment
from genbench.training.config import Augment
from genbench.training.distributed import shard
from genbench.training.runtime import Runtime

EVAL_BATCH = 1024
# one training batch: images (K, b, C, H, W), labels (K, b), and the global batch size b
Batch = tuple[torch.Tensor, torch.Tensor, int]


class Source(Protocol):
    n: int  # items in the whole split (all ranks)
    steps_per_epoch: int  # optimizer steps in one epoch over it

    def batches(self, gens: list[torch.Generator], aug: Augment, epoch: int) -> Iterator[Batch]:
        ...

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's items in eval order: shared images (b, C, H, W), labels (K, b)."""
        ...


class ResidentSource:
    """A split resident on ``device``: images (N, C, H, W) float, labels (K, N)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, job: Runtime) -> None:
        self.n, self.batch_size, self.job = x.shape[0], batch_size, job
        self.device = x.device
        self.x, self.y = shard(x, job), shard(y, job, dim=1)
        self.steps_per_epoch = math.ceil(self.n / batch_size)

    def batches(self, gens: list[torch.Generator], aug: Augment, epoch: int) -> Iterator[Batch]:
        """The epoch's global batches; under torchrun this rank's part of each. Which items of
        each batch are this rank's is worked out once per epoch (one read-back), not per step
        (a boolean mask per step is a host sync per step)."""
        perms = torch.stack([torch.randperm(self.n, generator=g, device=g.device)
                             for g in gens]).to(self.device)
        starts = range(0, self.n, self.batch_size)
        if self.job.active:  # one model per process under torchrun (fit, not fit_many)
            mine = perms[0] % self.job.world == self.job.rank
            padded = torch.nn.functional.pad(mine, (0, len(starts) * self.batch_size - self.n))
            counts = padded.view(len(starts), self.batch_size).sum(1).tolist()
            positions = mine.nonzero().squeeze(1).split(counts)
        for b, start in enumerate(starts):
            idx = perms[:, start:start + self.batch_size]
            size = idx.shape[1]
            draws = [augment.draw(aug, size, g, self.device) for g in gens] if aug.active else None
            if self.job.active:
                keep = positions[b] - start
                idx = idx[:, keep] // self.job.world
                draws = None if draws is None else [d.select(keep) for d in draws]
            xb, yb = self.x[idx], self.y.gather(1, idx)
            if draws is not None:
                xb = torch.stack([augment.apply(xb[i], aug, d) for i, d in enumerate(draws)])
            yield xb, yb, size

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.x.shape[0], EVAL_BATCH):
            yield self.x[start:start + EVAL_BATCH], self.y[:, start:start + EVAL_BATCH]


class StreamSource:
    """A split streamed from storage: ``dataset[i]`` returns (uint8 image tensor, i); labels
    (1, N) are looked up by index, so random labels drawn once stay fixed across epochs and
    ranks. ``preprocess`` maps uint8 batches to float on the device."""

    def __init__(self, dataset: torch.utils.data.Dataset, labels: torch.Tensor, batch_size: int,
                 job: Runtime, device: torch.device, preprocess: Callable[[torch.Tensor], torch.Tensor],
                 workers: int, seed: int) -> None:
        # labels stay on the host and travel with their batch (a non-blocking copy), so no
        # step waits on a host-to-device copy of the index
        self.dataset, self.labels, self.job, self.device = dataset, labels.cpu(), job, device
        self.n, self.batch_size, self.preprocess = len(dataset), batch_size, preprocess
        self.workers, self.seed = workers, seed
        # DistributedSampler gives each rank ceil(n / world) items; training drops the last
        # incomplete local batch
        self.steps_per_epoch = math.ceil(self.n / job.world) // max(1, batch_size // job.world)

    def _loader(self, train: bool, epoch: int, batch_size: int) -> DataLoader:
        """Training drops the last incomplete batch (as ImageNet training does: a batch of one
        image breaks BatchNorm); evaluation keeps every image (DistributedSampler pads the
        last round with at most world - 1 repeated images)."""
        sampler = DistributedSampler(self.dataset, num_replicas=self.job.world,
                                     rank=self.job.rank, shuffle=train, seed=self.seed)
        sampler.set_epoch(epoch)
        return DataLoader(self.dataset, batch_size=batch_size, sampler=sampler,
                          num_workers=self.workers, pin_memory=self.device.type == "cuda",
                          drop_last=train)

    def _to_device(self, images: torch.Tensor, index: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.preprocess(images.to(self.device, non_blocking=True))
        return x, self.labels[:, index].to(self.device, non_blocking=True)

    def batches(self, gens: list[torch.Generator], aug: Augment, epoch: int) -> Iterator[Batch]:
        local = max(1, self.batch_size // self.job.world)
        for images, index in self._loader(True, epoch, local):
            x, y = self._to_device(images, index)
            if aug.active:
                x = augment.augment_batch(x, aug, gens[0])
            yield x[None], y, x.shape[0] * self.job.world

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, index in self._loader(False, 0, EVAL_BATCH):
            yield self._to_device(images, index)
