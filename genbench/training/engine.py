"""The training engine: ``fit`` one model, ``fit_many`` K models side by side. One loop.

Why it is fast: the whole dataset sits on the device for the whole run; each epoch draws a
permutation on the device; a batch is an index into resident tensors (no DataLoader, no
per-batch host-to-device copy); augmentation runs on device tensors; losses and accuracies
accumulate on the device and are read back once per epoch. On CUDA it adds bf16 autocast,
channels_last for convolutions, fused optimizers and, on long runs, torch.compile. K models
of one architecture train in one launch with torch.func (see ``trainee.py``).

Why it is reproducible: every random draw of a run (data order, augmentation, dropout) comes
from the run's seed, and checkpoints carry the generators, so a resumed run continues exactly
where an uninterrupted one would be.

Why it scales out unchanged: under ``torchrun`` the model is wrapped in
DistributedDataParallel, each rank holds its shard of the data and computes its part of every
global batch (``sources.py``), losses are scaled so that DDP's gradient average equals the
one-process gradient of the global batch, and epoch statistics are summed over ranks; only
rank 0 writes checkpoints and draws the progress bar.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from genbench import progress
from genbench.errors import ConfigError, GenbenchError
from genbench.training import distributed
from genbench.training.config import TrainConfig
from genbench.training.distributed import Dist
from genbench.training.result import RunResult
from genbench.training.sources import ResidentSource, Source, StreamSource
from genbench.training.trainee import SingleTrainee, StackedTrainee, State, Trainee, vmappable

COMPILE_MIN_STEPS = 2000


class NonFiniteLossError(GenbenchError):
    """The loss became NaN or infinite. ``last_good_state`` holds the weights at the start of
    the epoch in which it happened (the model is restored to them)."""

    def __init__(self, message: str, epoch: int, step: int, model_index: int,
                 last_good_state: State) -> None:
        super().__init__(message)
        self.epoch, self.step, self.model_index = epoch, step, model_index
        self.last_good_state = last_good_state


def _as_float_images(ds, device: torch.device, what: str) -> torch.Tensor:
    x = ds.x
    if not torch.is_floating_point(x):
        raise ConfigError(f"fit: {what} images of '{getattr(ds, 'name', '?')}' are {x.dtype}; "
                          "preprocess them to float first (genbench.data.preprocess)")
    return x.to(device=device, dtype=torch.float32)


def _labels(ds, k: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    if labels is None:
        return ds.y.to(device).long().expand(k, -1)
    labels = torch.as_tensor(labels).to(device).long()
    if labels.shape != (k, len(ds.y)):
        raise ConfigError(f"fit_many: labels must have shape (K={k}, N={len(ds.y)}), "
                          f"got {tuple(labels.shape)}")
    return labels


def _autocast(device: torch.device, config: TrainConfig) -> contextlib.AbstractContextManager:
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _optimizer(params: list[torch.Tensor], config: TrainConfig,
               device: torch.device) -> torch.optim.Optimizer:
    fused = {"fused": True} if device.type == "cuda" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, **fused)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Fix the global generator (dropout draws from it) without disturbing the caller's, and
    flush denormal floats to zero while training on the CPU: small weights and activations
    drift into the denormal range, where x86 arithmetic runs 10-15x slower (measured on
    small Inception: 13 vs 183 images/s). Flushing is deterministic; it is switched off
    again on the way out."""
    devices = [device.index or 0] if device.type == "cuda" else []
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        if flush:
            torch.set_flush_denormal(False)


@torch.no_grad()
def _evaluate(trainee: Trainee, source: Source, config: TrainConfig, device: torch.device,
              job: Dist, keep: str | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Mean loss (K,), accuracy (K,) and, with ``keep`` "probs" or "logits", those per sample
    (K, N, C) of every model on a source's whole split, in eval mode, summed over ranks."""
    trainee.train(False)
    k = trainee.k
    sums = torch.zeros(3, k, device=device)  # loss, correct, count
    probs = []
    for xb, yb in source.chunks():
        with _autocast(device, config):
            logits = trainee.forward(xb, shared=True).float()
        sums[0] += F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").sum(1)
        sums[1] += (logits.argmax(-1) == yb).sum(1)
        sums[2] += yb.shape[1]
        if keep:
            probs.append((logits.softmax(-1) if keep == "probs" else logits).cpu())
    distributed.all_reduce_sum(sums, job)
    n = sums[2].clamp(min=1)
    kept = None
    if keep:
        local = torch.cat(probs, 1) if probs else torch.empty(k, 0, 0)
        kept = distributed.unshard(distributed.all_gather_objects(local, job), dim=1)
    return sums[0] / n, sums[1] / n, kept


def _global_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_global_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _to_cpu(state: State) -> State:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class _Loop:
    """The training loop over K models that share a data source, a config and a schedule."""

    def __init__(self, trainee: Trainee, train: Source, test: Source | None,
                 config: TrainConfig, seeds: Sequence[int], device: torch.device,
                 names: Sequence[str], progress: bool | None, job: Dist) -> None:
        self.trainee, self.train, self.test, self.config = trainee, train, test, config
        self.device, self.k, self.job = device, trainee.k, job
        self.gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.opt = _optimizer(trainee.parameters(), config, device)
        self.results = [
            RunResult(config=config.to_dict(), model=names[i], seed=seeds[i], n_train=train.n,
                      n_test=0 if test is None else test.n) for i in range(self.k)]
        self.active = [True] * self.k
        self.final_states: list[State | None] = [None] * self.k
        self.epoch, self.step, self.elapsed = 0, 0, 0.0
        self.progress = progress if job.main else False
        if config.keep_weights:
            for i, r in enumerate(self.results):
                r.init_state = _to_cpu(trainee.model_state(i))

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        if not self.job.main:
            return
        blob = {"trainee": self.trainee.state(), "opt": self.opt.state_dict(),
                "gens": [g.get_state() for g in self.gens], "epoch": self.epoch,
                "step": self.step, "elapsed": self.elapsed, "active": self.active,
                "results": [r.to_json() for r in self.results],
                "final_states": self.final_states, "rng": _global_rng_state(self.device)}
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)

    def restore(self, path: Path) -> None:
        blob = torch.load(path, map_location=self.device, weights_only=False)
        self.trainee.load(blob["trainee"])
        self.opt.load_state_dict(blob["opt"])
        for g, s in zip(self.gens, blob["gens"]):
            g.set_state(s.cpu() if g.device.type == "cpu" else s)
        self.epoch, self.step, self.elapsed = blob["epoch"], blob["step"], blob["elapsed"]
        self.active, self.final_states = blob["active"], blob["final_states"]
        self.results = [RunResult.from_json(t) for t in blob["results"]]
        _set_global_rng_state(blob["rng"], self.device)

    # -- one epoch -----------------------------------------------------------------------------
    def _epoch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Train one epoch; return the epoch's mean loss and online accuracy per model."""
        cfg, world = self.config, self.job.world
        lr = cfg.lr * cfg.lr_decay ** self.epoch
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.trainee.train(True)
        sums = torch.zeros(3, self.k, device=self.device)  # loss, correct, count
        first_bad = torch.full((self.k,), -1, device=self.device, dtype=torch.long)
        for xb, yb, size in self.train.batches(self.gens, cfg.augment, self.epoch):
            with _autocast(self.device, cfg):
                logits = self.trainee.forward(xb).float()
            per_sample = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none")
            # each model's mean over the global batch; DDP averages over ranks, hence * world
            losses = per_sample.sum(1) * (world / size)
            self.opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            self.opt.step()
            local = per_sample.detach().sum(1)
            first_bad = torch.where(~torch.isfinite(local) & (first_bad < 0), self.step,
                                    first_bad)
            sums[0] += local
            sums[1] += (logits.detach().argmax(-1) == yb).sum(1)
            sums[2] += yb.shape[1]
            self.step += 1
        distributed.all_reduce_sum(sums, self.job)
        self._check_finite(distributed.all_reduce_max(first_bad, self.job))
        return sums[0] / sums[2], sums[1] / sums[2]

    def _check_finite(self, first_bad: torch.Tensor) -> None:
        for i, s in enumerate(first_bad.tolist()):
            if s >= 0 and self.active[i]:
                self.trainee.load(self._epoch_start)
                raise NonFiniteLossError(
                    f"training loss became non-finite at epoch {self.epoch + 1}, step {s + 1} "
                    f"(model {i}, seed {self.results[i].seed}); the weights were restored to "
                    "the start of that epoch: lower the learning rate or check the inputs",
                    epoch=self.epoch + 1, step=s + 1, model_index=i,
                    last_good_state=_to_cpu(self._epoch_start))

    # -- stopping ------------------------------------------------------------------------------
    def _met(self, loss: float, acc: float) -> bool:
        cfg = self.config
        if cfg.stop == "train_acc":
            return acc >= cfg.stop_target
        if cfg.stop == "loss":
            return loss <= cfg.stop_target
        return False

    def _eval(self, source: Source, keep: str | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return _evaluate(self.trainee, source, self.config, self.device, self.job, keep)

    def _confirmed(self, candidates: list[int]) -> set[int]:
        """A fit counts only once a full evaluation pass on the training set confirms it."""
        if not self.config.confirm_fit:
            return set(candidates)
        loss, acc, _ = self._eval(self.train)
        return {i for i in candidates if self._met(loss[i].item(), acc[i].item())}

    # -- the run -------------------------------------------------------------------------------
    def run(self, checkpoint: Path | None) -> list[RunResult]:
        cfg = self.config
        if checkpoint is not None and checkpoint.exists():
            self.restore(checkpoint)
        bar = tqdm(total=cfg.max_epochs, initial=self.epoch, unit="epoch", leave=False,
                   disable=None if self.progress is None else not self.progress)
        while self.epoch < cfg.max_epochs and any(self.active):
            t0 = time.perf_counter()
            self._epoch_start = self.trainee.state()
            loss, acc = self._epoch()
            self.epoch += 1
            loss_l, acc_l = loss.tolist(), acc.tolist()
            self.elapsed += time.perf_counter() - t0
            candidates = [i for i in range(self.k)
                          if self.active[i] and self._met(loss_l[i], acc_l[i])]
            stopped = self._confirmed(candidates) if candidates else set()
            last = self.epoch == cfg.max_epochs
            evaluate = self.epoch % cfg.eval_every == 0 or last or bool(stopped)
            self._record(loss_l, acc_l, evaluate)
            for i in stopped:
                r = self.results[i]
                r.fitted, r.fit_epoch, r.fit_step, r.fit_seconds = (
                    True, self.epoch, self.step, self.elapsed)
                self._finish(i)
            if last:
                for i in range(self.k):
                    if self.active[i]:
                        self._finish(i)
            bar.update(1)
            bar.set_postfix(loss=f"{min(loss_l):.4f}", acc=f"{max(acc_l):.4f}")
            if self.job.main:  # live progress for the pytest plugin (genbench.progress)
                progress.emit(progress.Epoch(self.results[0].model, self.epoch, cfg.max_epochs,
                                             self.k, sum(self.active), min(loss_l), max(acc_l),
                                             self.elapsed))
            if checkpoint is not None:
                self.save(checkpoint)
        bar.close()
        self._finalize()
        return self.results

    def _record(self, loss: list[float], acc: list[float], evaluate: bool) -> None:
        test = train_eval = None
        if evaluate and self.test is not None:
            test = self._eval(self.test, "logits" if self.config.keep_test_history else None)
        if evaluate and self.config.keep_train_eval:
            train_eval = self._eval(self.train)
        lr = self.config.lr * self.config.lr_decay ** (self.epoch - 1)
        for i, r in enumerate(self.results):
            if not self.active[i]:
                continue
            c = r.curves
            c["epoch"].append(self.epoch)
            c["step"].append(self.step)
            c["seconds"].append(self.elapsed)
            c["lr"].append(lr)
            c["train_loss"].append(loss[i])
            c["train_acc"].append(acc[i])
            c["test_loss"].append(None if test is None else test[0][i].item())
            c["test_acc"].append(None if test is None else test[1][i].item())
            c["train_eval_loss"].append(None if train_eval is None else train_eval[0][i].item())
            c["train_eval_acc"].append(None if train_eval is None else train_eval[1][i].item())
            if test is not None and test[2] is not None:
                logits = test[2][i][None]
                r.test_history = logits if r.test_history is None else torch.cat(
                    [r.test_history, logits])

    def _finish(self, i: int) -> None:
        self.active[i] = False
        r = self.results[i]
        r.epochs, r.steps, r.seconds = self.epoch, self.step, self.elapsed
        self.final_states[i] = _to_cpu(self.trainee.model_state(i))

    def _finalize(self) -> None:
        """Final metrics of each model at its own stopping point, from full evaluations; the
        trainee is left holding every model's final state."""
        self.trainee.load(_stack_states(self.final_states, self.device))
        train = self._eval(self.train)
        test = None if self.test is None else self._eval(
            self.test, "probs" if self.config.keep_test_probs else None)
        for i, r in enumerate(self.results):
            r.final = {"train_loss": train[0][i].item(), "train_acc": train[1][i].item()}
            if test is not None:
                r.final.update(test_loss=test[0][i].item(), test_acc=test[1][i].item())
                if test[2] is not None:
                    r.test_probs = test[2][i]
            if self.config.keep_weights:
                r.final_state = self.final_states[i]


def _stack_states(states: Sequence[State | None], device: torch.device) -> State:
    """One state for the trainee from per-model states: the state itself for K = 1, else
    each tensor stacked along a leading K dimension."""
    if any(s is None for s in states):
        raise RuntimeError("a model finished without a final state")
    if len(states) == 1:
        return {n: t.to(device) for n, t in states[0].items()}
    return {n: torch.stack([s[n] for s in states]).to(device) for n in states[0]}


def _prepare(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


def _maybe_compile(model: nn.Module, config: TrainConfig, n: int,
                   device: torch.device) -> nn.Module | None:
    steps = config.max_epochs * math.ceil(n / config.batch_size)
    wanted = config.compile == "on" or (
        config.compile == "auto" and device.type == "cuda" and steps >= COMPILE_MIN_STEPS)
    return torch.compile(model) if wanted else None


def _device(ds, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if distributed.launched():
        return distributed.local_device()
    return ds.x.device if hasattr(ds, "x") else torch.device("cpu")


def _source(ds, k: int, labels: torch.Tensor | None, config: TrainConfig, device: torch.device,
            job: Dist, what: str) -> Source:
    """A resident source for an ArrayDataset, a streamed one for a StreamingDataset."""
    if hasattr(ds, "stream_dataset"):
        if k != 1:
            raise ConfigError("fit_many: streamed datasets train one model per process")
        if config.keep_test_probs or config.keep_test_history:
            raise ConfigError("keep_test_probs/keep_test_history need a resident test set")
        targets = ds.targets if labels is None else labels
        return StreamSource(ds.stream_dataset(), torch.as_tensor(targets).long().reshape(1, -1),
                            config.batch_size, job, device, ds.preprocess, ds.workers,
                            config.seed)
    return ResidentSource(_as_float_images(ds, device, what), _labels(ds, k, labels, device),
                          config.batch_size, job)


def fit(model: nn.Module, train, config: TrainConfig, test=None, *,
        device: torch.device | str | None = None, checkpoint: str | Path | None = None,
        progress: bool | None = None, name: str = "", labels: torch.Tensor | None = None
        ) -> RunResult:
    """Train ``model`` on ``train`` under ``config``; return its RunResult.

    ``train``/``test``: an ArrayDataset with float images (resident on the device for the
    whole run) or a streamed dataset (``genbench.data.imagenet``). The model is trained in
    place and left at its final state. ``test`` is evaluated every ``config.eval_every``
    epochs. ``checkpoint``: a file written after every epoch; if it exists when fit starts,
    the run resumes from it and ends exactly as an uninterrupted run would. ``labels``
    overrides ``train.y`` (shape (N,)). Under torchrun the same call trains with
    DistributedDataParallel over all ranks (see the module docstring); every rank returns
    the same result.
    """
    dev = _device(train, device)
    job = distributed.current(dev)
    model = _prepare(model, dev)
    with _seeded(config.seed, dev):
        train_src = _source(train, 1, None if labels is None else torch.as_tensor(labels)[None],
                            config, dev, job, "training")
        test_src = None if test is None else _source(test, 1, None, config, dev, job, "test")
        call = _maybe_compile(model, config, train_src.n, dev)
        if job.active:
            ddp = torch.nn.parallel.DistributedDataParallel(
                call or model, device_ids=[dev.index] if dev.type == "cuda" else None)
            call = ddp
        loop = _Loop(SingleTrainee(model, call), train_src, test_src, config, [config.seed],
                     dev, [name or type(model).__name__], progress, job)
        return loop.run(None if checkpoint is None else Path(checkpoint))[0]


def fit_many(models: Sequence[nn.Module], train, config: TrainConfig, test=None, *,
             seeds: Sequence[int] | None = None, labels: torch.Tensor | None = None,
             device: torch.device | str | None = None, strategy: str = "auto",
             progress: bool | None = None, name: str = "") -> list[RunResult]:
    """Train K models of one architecture side by side, each with its own seed (data order,
    augmentation, dropout) and optionally its own labels ((K, N) ``labels``); each stops on
    its own stop rule. Results equal K sequential ``fit`` calls with the same seeds.

    strategy: "vmap" stacks the K models and trains them in one vectorized launch
    (torch.func); "sequential" trains them one after the other; "auto" picks vmap on CUDA
    and sequential on the CPU, where training is compute-bound and vmap is measured slower,
    and for models with BatchNorm (whose running statistics vmap cannot batch).
    Under torchrun the K models are split over the ranks (rank r trains models r, r + N, ...
    side by side) and every rank returns all K results.
    """
    k = len(models)
    if k == 0:
        raise ConfigError("fit_many: models must hold at least one model")
    seeds = list(seeds) if seeds is not None else [config.seed + i for i in range(k)]
    if len(seeds) != k:
        raise ConfigError(f"fit_many: seeds has {len(seeds)} entries for {k} models")
    if strategy not in ("auto", "vmap", "sequential"):
        raise ConfigError(f"fit_many: strategy={strategy!r}; allowed: auto, vmap, sequential")
    if labels is not None and tuple(labels.shape) != (k, len(train.y)):
        raise ConfigError(f"fit_many: labels must have shape (K={k}, N={len(train.y)}), "
                          f"got {tuple(labels.shape)}")
    dev = _device(train, device)
    job = distributed.current(dev)
    if job.active:
        return _fit_many_over_ranks(models, train, config, test, seeds, labels, dev, strategy,
                                    progress, name, job)
    if strategy == "auto":
        strategy = "vmap" if dev.type == "cuda" and vmappable(models[0]) else "sequential"
    if strategy == "sequential":
        return [fit(m, train, config.replace(seed=s), test, device=dev, progress=progress,
                    name=name, labels=None if labels is None else labels[i])
                for i, (m, s) in enumerate(zip(models, seeds))]
    if not vmappable(models[0]):
        raise ConfigError("fit_many: strategy='vmap' cannot train models with BatchNorm "
                          "(running statistics); use strategy='sequential'")
    models = [m.to(dev) for m in models]
    with _seeded(seeds[0], dev):
        train_src = _source(train, k, labels, config, dev, job, "training")
        test_src = None if test is None else _source(test, k, None, config, dev, job, "test")
        loop = _Loop(StackedTrainee(list(models)), train_src, test_src, config, seeds, dev,
                     [name or type(models[0]).__name__] * k, progress, job)
        results = loop.run(None)
    for m, state in zip(models, loop.final_states):
        m.load_state_dict({n: t.to(dev) for n, t in state.items()})
    return results


def _fit_many_over_ranks(models, train, config, test, seeds, labels, dev, strategy, progress,
                         name, job: Dist) -> list[RunResult]:
    """Rank r trains models r, r + world, ... (one process each, no gradient exchange), then
    every rank gathers all results in the original order."""
    mine = list(range(job.rank, len(models), job.world))
    local = []
    if mine:
        with _local_world():
            local = fit_many([models[i] for i in mine], train, config, test,
                             seeds=[seeds[i] for i in mine],
                             labels=None if labels is None else labels[mine], device=dev,
                             strategy=strategy, progress=progress, name=name)
    gathered = distributed.all_gather_objects([(i, r.to_json()) for i, r in zip(mine, local)],
                                              job)
    by_index = dict(item for part in gathered for item in part)
    results = [RunResult.from_json(by_index[i]) for i in range(len(models))]
    for i in mine:
        state = results[i].final_state
        if state is not None:
            models[i].load_state_dict({n: t.to(dev) for n, t in state.items()})
    return results


@contextlib.contextmanager
def _local_world() -> Iterator[None]:
    """Within this block the engine trains as a world of one (a rank's own slice of a study)."""
    previous = distributed.FORCE_LOCAL
    distributed.FORCE_LOCAL = True
    try:
        yield
    finally:
        distributed.FORCE_LOCAL = previous


def evaluate(model: nn.Module, ds, config: TrainConfig | None = None, *,
             device: torch.device | str | None = None, keep_probs: bool = False
             ) -> dict[str, float | torch.Tensor]:
    """Loss and accuracy of ``model`` on a whole dataset in eval mode (and, on request, the
    per-sample probabilities), through the same evaluation path the engine uses."""
    dev = _device(ds, device)
    config = config or TrainConfig()
    job = Dist()
    source = _source(ds, 1, None, config, dev, job, "evaluation")
    loss, acc, probs = _evaluate(SingleTrainee(model.to(dev)), source, config, dev, job,
                                 "probs" if keep_probs else None)
    out: dict[str, float | torch.Tensor] = {"loss": loss.item(), "acc": acc.item()}
    if probs is not None:
        out["probs"] = probs[0]
    return out
