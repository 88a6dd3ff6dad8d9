"""The training engine: ``fit`` one model, ``fit_many`` K models side by side. One loop.

The path of a step, top to bottom (docs/architecture.md draws it): ``fit``/``fit_many``
resolve a :class:`Runtime` (device, rank/world, precision, compile) once, build a
:class:`Trainee` (one module, or K stacked under vmap) and its data :class:`Source`, then
``_run`` is the epoch loop over a small :class:`LoopState`; ``_train_epoch`` is the step.

Why it is fast: the whole dataset sits on the device for the whole run; each epoch draws a
permutation on the device; a batch is an index into resident tensors (no DataLoader, no
per-batch host-to-device copy); augmentation runs on device tensors; losses and accuracies
accumulate on the device and are read back once per epoch (one read-back per epoch, none per
step). On CUDA it adds bf16 autocast of the training forward pass, channels_last for
convolutions, fused optimizers and, on long runs, torch.compile with static shapes (compile
time is reported apart, as ``RunResult.compile_seconds``, not in ``seconds``).

Why it is reproducible: every random draw of a run (data order, augmentation, dropout) comes
from the run's seed; cuDNN runs deterministic; the stop rule and every recorded metric are
judged in fp32 (bf16 near-ties would flip an argmax); checkpoints carry the generators (and
the run's identity, checksummed), so a resumed run continues exactly where an uninterrupted
one would, on any device.

Why it scales out unchanged: under ``torchrun`` the model is wrapped in
DistributedDataParallel (then compiled), each rank holds its shard of the data and computes
its part of every global batch (``sources.py``), losses are scaled so that DDP's gradient
average equals the one-process gradient of the global batch, and epoch statistics are summed
over ranks; only rank 0 writes checkpoints and draws the progress bar.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from genbench import progress
from genbench.errors import ConfigError, GenbenchError
from genbench.training import checkpoint as ckpt
from genbench.training import checks
from genbench.training import distributed
from genbench.training.config import TrainConfig, lr_at
from genbench.training.result import RunResult
from genbench.training.runtime import Runtime
from genbench.training.sources import EVAL_BATCH, ResidentSource, Source, StreamSource
from genbench.training.trainee import SingleTrainee, StackedTrainee, State, Trainee

COMPILE_MIN_STEPS = 2000
BF16_SLACK = 0.01  # online accuracy below the target that still triggers an fp32 check


class NonFiniteLossError(GenbenchError):
    """The loss became NaN or infinite. ``last_good_state`` holds the weights at the start of
    the epoch in which it happened (the model is restored to them)."""

    def __init__(self, message: str, epoch: int, step: int, model_index: int,
                 last_good_state: State) -> None:
        super().__init__(message)
        self.epoch, self.step, self.model_index = epoch, step, model_index
        self.last_good_state = last_good_state


# ------------------------------------------------------------------------------ evaluation

@dataclass(frozen=True)
class Evaluation:
    """Every model's mean loss and accuracy on a whole split (fp32, eval mode, summed over
    ranks), read back once; ``logits`` (K, N, C) on the CPU when asked for."""

    loss: list[float]
    acc: list[float]
    logits: torch.Tensor | None = None

    @property
    def probs(self) -> torch.Tensor | None:
        return None if self.logits is None else self.logits.softmax(-1)


@dataclass(frozen=True)
class ModelEvaluation:
    """One model's mean loss and accuracy on a whole split (fp32, eval mode) and, when asked
    for, its per-sample probabilities (N, C) on the CPU: what ``evaluate`` returns."""

    loss: float
    acc: float
    probs: torch.Tensor | None = None


@torch.no_grad()
def _evaluate(trainee: Trainee, source: Source, rt: Runtime, keep_logits: bool = False
              ) -> Evaluation:
    """Evaluation is fp32 whatever the training precision: the 100% stop rule and the records
    must not depend on bf16 rounding of near-tied logits."""
    trainee.train(False)
    sums = torch.zeros(2, trainee.k, device=rt.device, dtype=torch.float64)  # loss, correct
    count = torch.zeros(1, device=rt.device, dtype=torch.float64)
    kept = []
    for xb, yb in source.chunks():
        n = xb.shape[0]
        if rt.compile and n < EVAL_BATCH:  # one static shape for every chunk: no recompiles
            xb = torch.cat([xb, xb.new_zeros(EVAL_BATCH - n, *xb.shape[1:])])
        logits = trainee.forward(xb, shared=True)[:, :n].float()
        sums[0] += F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").sum(1)
        sums[1] += (logits.argmax(-1) == yb).sum(1)
        count += yb.shape[1]
        if keep_logits:
            kept.append(logits.cpu())
    totals = distributed.all_reduce_sum(torch.cat([sums.flatten(), count]), rt)
    values = totals.tolist()  # the one read-back
    n, k = max(values[-1], 1.0), trainee.k
    logits = None
    if keep_logits:
        local = torch.cat(kept, 1) if kept else torch.empty(k, 0, 0)
        logits = distributed.unshard(distributed.all_gather_objects(local, rt), dim=1)
    return Evaluation([v / n for v in values[:k]], [v / n for v in values[k:2 * k]], logits)


# ------------------------------------------------------------------------------- the loop

@dataclass
class LoopState:
    """Everything the loop changes, and nothing else: what a checkpoint holds."""

    opt: torch.optim.Optimizer
    gens: list[torch.Generator]
    results: list[RunResult]  # the history: curves, fit times, outcomes per model
    active: list[bool]  # the stop mask: models still training
    final_states: list[State | None]
    epoch: int = 0
    step: int = 0
    elapsed: float = 0.0  # training seconds, compile time excluded
    compile_seconds: float = 0.0
    compiled_shapes: set = field(default_factory=set)


@dataclass(frozen=True)
class EpochStats:
    """One epoch's online training loss and accuracy per model, and the 0-based step at which
    each model's loss first became non-finite (-1: never)."""

    loss: list[float]
    acc: list[float]
    first_bad: list[int]


def _train_epoch(trainee: Trainee, source: Source, cfg: TrainConfig, rt: Runtime,
                 st: LoopState) -> EpochStats:
    """One epoch of optimizer steps. Nothing here reads back from the device, and a step
    launches few ops beyond forward, backward and the optimizer (benchmarks/test_engine.py
    counts them): each step's per-model mean loss lands in a row of ``means``, which at the
    end of the epoch gives the epoch's loss and the first non-finite step."""
    trainee.train(True)
    k = trainee.k
    means = torch.zeros(source.steps_per_epoch, k, device=rt.device)
    correct = torch.zeros(k, device=rt.device)
    counts = []
    for b, (xb, yb, size) in enumerate(source.batches(st.gens, cfg.augment, st.epoch)):
        timed = rt.compile and (xb.shape, True) not in st.compiled_shapes
        t0 = _sync_time(rt) if timed else 0.0
        for group in st.opt.param_groups:
            group["lr"] = lr_at(cfg, st.step, source.steps_per_epoch)
        with rt.autocast():
            logits = trainee.forward(xb)  # (K, b, C)
        flat, n = logits.flatten(0, 1).float(), yb.shape[1]
        if k == 1:
            per_model = F.cross_entropy(flat, yb.flatten())
        else:
            per_model = F.cross_entropy(flat, yb.flatten(), reduction="none").view(k, n).mean(1)
        # every model's gradient is that of its mean loss over the global batch: DDP averages
        # the ranks' gradients, so a rank holding n of the batch's `size` items scales by
        # n * world / size (exactly 1 in one process)
        scale = n * rt.world / size
        st.opt.zero_grad(set_to_none=True)
        (per_model.sum() * scale if k > 1 or scale != 1 else per_model).backward()
        st.opt.step()
        means[b] = per_model.detach()
        correct += (logits.detach().argmax(-1) == yb).sum(1)
        counts.append(n)
        st.step += 1
        if timed:  # the first step of a new shape compiles: reported apart, not as training
            st.compile_seconds += _sync_time(rt) - t0
            st.compiled_shapes.add((xb.shape, True))
    bad = ~torch.isfinite(means)
    first = torch.where(bad.any(0), bad.float().argmax(0) + (st.step - len(counts)), -1)
    weights = torch.tensor(counts + [0] * (len(means) - len(counts)), device=rt.device,
                           dtype=torch.float32)
    sums = torch.cat([(means * weights[:, None]).sum(0), correct, weights.sum()[None]])
    distributed.all_reduce_sum(sums, rt)
    distributed.all_reduce_max(first, rt)
    values = torch.cat([(sums[:2 * k] / sums[-1]).double(), first.double()]).tolist()
    return EpochStats(values[:k], values[k:2 * k], [int(v) for v in values[2 * k:]])


def _sync_time(rt: Runtime) -> float:
    if rt.device.type == "cuda":
        torch.cuda.synchronize(rt.device)
    return time.perf_counter()


def _met(cfg: TrainConfig, loss: float, acc: float) -> bool:
    if cfg.stop == "train_acc":
        return acc >= cfg.stop_target
    if cfg.stop == "loss":
        return loss <= cfg.stop_target
    return False


def _run(trainee: Trainee, train: Source, test: Source | None, cfg: TrainConfig, rt: Runtime,
         st: LoopState, identity: dict[str, Any], path: Path | None,
         bar_on: bool | None) -> list[RunResult]:
    """The epoch loop: train, stop the models that fitted (confirmed by an fp32 pass over the
    training set), record, checkpoint; then the final evaluations."""
    if path is not None and path.exists():
        _restore(trainee, st, ckpt.load(path, identity), rt)
    bar = tqdm(total=cfg.max_epochs, initial=st.epoch, unit="epoch", leave=False,
               disable=(None if bar_on is None else not bar_on) if rt.main else True)
    while st.epoch < cfg.max_epochs and any(st.active):
        t0, start = time.perf_counter(), trainee.state()
        compiling = st.compile_seconds
        stats = _train_epoch(trainee, train, cfg, rt, st)
        _check_finite(trainee, st, stats, start)
        st.epoch += 1
        st.elapsed += time.perf_counter() - t0 - (st.compile_seconds - compiling)
        # bf16 online accuracy can miss near-tied samples: under bf16 a model within
        # BF16_SLACK of the target is a candidate, and the fp32 confirming pass decides
        slack = BF16_SLACK if rt.precision == "bf16" and cfg.confirm_fit else 0.0
        fitted = [i for i in range(trainee.k) if st.active[i]
                  and _met(cfg, stats.loss[i], stats.acc[i] + slack)]
        if fitted and cfg.confirm_fit:
            check = _evaluate(trainee, train, rt)
            fitted = [i for i in fitted if _met(cfg, check.loss[i], check.acc[i])]
        last = st.epoch == cfg.max_epochs
        _record(trainee, train, test, cfg, rt, st, stats,
                evaluate=st.epoch % cfg.eval_every == 0 or last or bool(fitted))
        for i in fitted:
            st.results[i].fitted = True
            st.results[i].fit_epoch, st.results[i].fit_step = st.epoch, st.step
            st.results[i].fit_seconds = st.elapsed
        for i in range(trainee.k):
            if st.active[i] and (i in fitted or last):
                _finish(trainee, st, i)
        bar.update(1)
        bar.set_postfix(loss=f"{min(stats.loss):.4f}", acc=f"{max(stats.acc):.4f}")
        if rt.main:  # live progress for the pytest plugin (genbench.progress)
            progress.emit(progress.Epoch(st.results[0].model, st.epoch, cfg.max_epochs,
                                         trainee.k, sum(st.active), min(stats.loss),
                                         max(stats.acc), st.elapsed))
        if path is not None and rt.main:
            ckpt.save(path, identity, _snapshot(trainee, st))
    bar.close()
    return _finalize(trainee, train, test, cfg, rt, st)


def _check_finite(trainee: Trainee, st: LoopState, stats: EpochStats, start: State) -> None:
    for i, s in enumerate(stats.first_bad):
        if s >= 0 and st.active[i]:
            trainee.load(start)
            raise NonFiniteLossError(
                f"training loss became non-finite at epoch {st.epoch + 1}, step {s + 1} "
                f"(model {i}, seed {st.results[i].seed}); the weights were restored to "
                "the start of that epoch: lower the learning rate or check the inputs",
                epoch=st.epoch + 1, step=s + 1, model_index=i, last_good_state=_to_cpu(start))


def _record(trainee: Trainee, train: Source, test: Source | None, cfg: TrainConfig,
            rt: Runtime, st: LoopState, stats: EpochStats, evaluate: bool) -> None:
    tested = evaluate and test is not None
    te = _evaluate(trainee, test, rt, cfg.keep_test_history) if tested else None
    tr = _evaluate(trainee, train, rt) if evaluate and cfg.keep_train_eval else None
    epoch_start = (st.epoch - 1) * train.steps_per_epoch
    lr = lr_at(cfg, epoch_start, train.steps_per_epoch)  # the lr of the epoch's first step
    for i, r in enumerate(st.results):
        if not st.active[i]:
            continue
        for key, value in (("epoch", st.epoch), ("step", st.step), ("seconds", st.elapsed),
                           ("lr", lr), ("train_loss", stats.loss[i]),
                           ("train_acc", stats.acc[i]),
                           ("test_loss", te and te.loss[i]), ("test_acc", te and te.acc[i]),
                           ("train_eval_loss", tr and tr.loss[i]),
                           ("train_eval_acc", tr and tr.acc[i])):
            r.curves[key].append(value)
        if te is not None and te.logits is not None:
            logits = te.logits[i][None]
            r.test_history = logits if r.test_history is None else torch.cat(
                [r.test_history, logits])


def _finish(trainee: Trainee, st: LoopState, i: int) -> None:
    st.active[i] = False
    r = st.results[i]
    r.epochs, r.steps, r.seconds = st.epoch, st.step, st.elapsed
    r.compile_seconds = st.compile_seconds
    st.final_states[i] = _to_cpu(trainee.model_state(i))


def _finalize(trainee: Trainee, train: Source, test: Source | None, cfg: TrainConfig,
              rt: Runtime, st: LoopState) -> list[RunResult]:
    """Final metrics of each model at its own stopping point, from full evaluations; the
    trainee is left holding every model's final state."""
    trainee.load(_stack_states(st.final_states, rt.device))
    tr = _evaluate(trainee, train, rt)
    te = None if test is None else _evaluate(trainee, test, rt, cfg.keep_test_probs)
    for i, r in enumerate(st.results):
        r.final = {"train_loss": tr.loss[i], "train_acc": tr.acc[i]}
        if te is not None:
            r.final.update(test_loss=te.loss[i], test_acc=te.acc[i])
            if te.logits is not None:
                r.test_probs = te.probs[i]
        if cfg.keep_weights:
            r.final_state = st.final_states[i]
    return st.results


# ------------------------------------------------------------------------------ checkpoints

def _snapshot(trainee: Trainee, st: LoopState) -> dict[str, Any]:
    rng = {"cpu": torch.get_rng_state()}
    if st.gens and st.gens[0].device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(st.gens[0].device)
    return {"trainee": _to_cpu(trainee.state()), "opt": st.opt.state_dict(),
            "gens": [g.get_state() for g in st.gens], "rng": rng, "epoch": st.epoch,
            "step": st.step, "elapsed": st.elapsed, "compile_seconds": st.compile_seconds,
            "active": list(st.active), "results": [r.to_json() for r in st.results],
            "final_states": [s or {} for s in st.final_states]}


def _restore(trainee: Trainee, st: LoopState, blob: dict[str, Any], rt: Runtime) -> None:
    """Every tensor of ``blob`` is on the CPU (``checkpoint.load``): generator states stay
    there (``set_state`` of a CUDA generator takes a CPU byte tensor), weights and optimizer
    state move to their parameters' device."""
    trainee.load({n: t.to(rt.device) for n, t in blob["trainee"].items()})
    st.opt.load_state_dict(blob["opt"])
    for g, s in zip(st.gens, blob["gens"]):
        g.set_state(s.cpu())
    torch.set_rng_state(blob["rng"]["cpu"].cpu())
    if "cuda" in blob["rng"]:
        torch.cuda.set_rng_state(blob["rng"]["cuda"].cpu(), rt.device)
    st.epoch, st.step, st.elapsed = blob["epoch"], blob["step"], blob["elapsed"]
    st.compile_seconds, st.active = blob["compile_seconds"], list(blob["active"])
    st.final_states = [s or None for s in blob["final_states"]]
    st.results = [RunResult.from_json(t) for t in blob["results"]]


def _identity(trainee: Trainee, train, test, cfg: TrainConfig, seeds: Sequence[int],
              labels: torch.Tensor | None) -> dict[str, Any]:
    """What makes a run this run (see ``checkpoint.py``)."""
    return {"config": cfg.to_dict(), "train": _fingerprint(train, labels),
            "test": None if test is None else _fingerprint(test, None), "seeds": list(seeds),
            "parameters": {n: list(t.shape) for n, t in trainee.model_state(0).items()}}


def _fingerprint(ds, labels: torch.Tensor | None) -> str:
    from genbench.data.dataset import content_fingerprint

    if hasattr(ds, "fingerprint"):
        base = ds.fingerprint()
    elif hasattr(ds, "stream_dataset"):
        base = f"{getattr(ds, 'name', '?')}:{len(ds.targets)}"
    else:
        x, y = _arrays(ds, "training")
        base = content_fingerprint(x.cpu(), y.cpu())
    if labels is None:
        return base
    import hashlib

    return base + ":labels=" + hashlib.sha256(labels.cpu().numpy().tobytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- building a run

def _arrays(ds, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a dataset: an ArrayDataset (``.x``/``.y``) or a torch
    TensorDataset of (images, labels)."""
    if isinstance(ds, torch.utils.data.TensorDataset) and len(ds.tensors) == 2:
        return ds.tensors[0], ds.tensors[1]
    if hasattr(ds, "x") and hasattr(ds, "y"):
        return ds.x, ds.y
    raise ConfigError(
        f"fit: the {what} data is a {type(ds).__name__}; pass a genbench ArrayDataset "
        "(genbench.data.load / ArrayDataset(x, y, num_classes)) or a "
        "torch.utils.data.TensorDataset(images, labels) of float images (N, C, H, W) and "
        "integer labels (N,)")


def _as_float_images(x: torch.Tensor, ds, device: torch.device, what: str) -> torch.Tensor:
    if not torch.is_floating_point(x):
        raise ConfigError(f"fit: {what} images of '{getattr(ds, 'name', '?')}' are {x.dtype}; "
                          "preprocess them to float first (genbench.data.preprocess)")
    return x.to(device=device, dtype=torch.float32)


def _source(ds, k: int, labels: torch.Tensor | None, config: TrainConfig, rt: Runtime,
            what: str) -> Source:
    """A resident source for arrays, a streamed one for a StreamingDataset."""
    if hasattr(ds, "stream_dataset"):
        if k != 1:
            raise ConfigError("fit_many: streamed datasets train one model per process")
        if config.keep_test_probs or config.keep_test_history:
            raise ConfigError("keep_test_probs/keep_test_history need a resident test set")
        targets = ds.targets if labels is None else labels
        return StreamSource(ds.stream_dataset(), torch.as_tensor(targets).long().reshape(1, -1),
                            config.batch_size, rt, rt.device, ds.preprocess, ds.workers,
                            config.seed)
    x, y = _arrays(ds, what)
    if labels is None:
        labels = y.to(rt.device).long().expand(k, -1)
    labels = torch.as_tensor(labels).to(rt.device).long()
    if labels.shape != (k, len(y)):
        raise ConfigError(f"fit_many: labels must have shape (K={k}, N={len(y)}), "
                          f"got {tuple(labels.shape)}")
    return ResidentSource(_as_float_images(x, ds, rt.device, what), labels,
                          config.batch_size, rt)


def _optimizer(params: list[torch.Tensor], config: TrainConfig,
               device: torch.device) -> torch.optim.Optimizer:
    fused = {"fused": True} if device.type == "cuda" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, **fused)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)


def _state(trainee: Trainee, config: TrainConfig, seeds: Sequence[int], rt: Runtime,
           names: Sequence[str], n_train: int, n_test: int) -> LoopState:
    results = [RunResult(config=config.to_dict(), model=names[i], seed=seeds[i],
                         n_train=n_train, n_test=n_test) for i in range(trainee.k)]
    if config.keep_weights:
        for i, r in enumerate(results):
            r.init_state = _to_cpu(trainee.model_state(i))
    return LoopState(opt=_optimizer(trainee.parameters(), config, rt.device),
                     gens=[torch.Generator(device=rt.device).manual_seed(s) for s in seeds],
                     results=results, active=[True] * trainee.k,
                     final_states=[None] * trainee.k)


def _to_cpu(state: State) -> State:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


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


def _wants_compile(config: TrainConfig, steps: int, device: torch.device) -> bool:
    return config.compile == "on" or (
        config.compile == "auto" and device.type == "cuda" and steps >= COMPILE_MIN_STEPS)


def _wrap(model: nn.Module, rt: Runtime) -> nn.Module:
    """What the loop calls: DDP first (under torchrun), then torch.compile of the whole
    (compiled DDP, as PyTorch's DDP notes prescribe: DDP's bucketing then splits the graph),
    with static shapes: a full batch, the epoch's last partial batch and eval chunks each
    compile once and never recompile."""
    call = model
    if rt.active:
        call = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    return torch.compile(call, dynamic=False) if rt.compile else call


# ------------------------------------------------------------------------------- public API

def fit(model: nn.Module, train, config: TrainConfig, test=None, *,
        device: Runtime | torch.device | str | None = None,
        checkpoint: str | Path | None = None, progress: bool | None = None, name: str = "",
        labels: torch.Tensor | None = None) -> RunResult:
    """Train ``model`` on ``train`` under ``config``; return its RunResult.

    ``train``/``test``: an ArrayDataset or a torch TensorDataset of float images (resident on
    the device for the whole run), or a streamed dataset (``genbench.data.imagenet``). The
    model is trained in place and left at its final state. ``test`` is evaluated every
    ``config.eval_every`` epochs. ``device``: a device or a :class:`Runtime` (default: the
    data's device; ``cuda:LOCAL_RANK`` under torchrun). ``checkpoint``: a file written after
    every epoch; if it exists when fit starts, the run resumes from it and ends exactly as an
    uninterrupted run would (a checkpoint of another run is refused, naming the field).
    ``labels`` overrides the training labels (shape (N,)). Under torchrun the same call
    trains with DistributedDataParallel over all ranks; every rank returns the same result.
    """
    checks.check_inputs([model], train, test, labels=labels, seeds=[config.seed], where="fit")
    return _fit(model, train, config, test, device, checkpoint, progress, name, labels)


def _fit(model: nn.Module, train, config: TrainConfig, test, device, checkpoint, progress,
         name: str, labels: torch.Tensor | None) -> RunResult:
    rt = Runtime.of(device, _data_device(train)).join()
    with rt.seeded(config.seed):
        lab = None if labels is None else torch.as_tensor(labels)[None]
        train_src = _source(train, 1, lab, config, rt, "training")
        test_src = None if test is None else _source(test, 1, None, config, rt, "test")
        rt = rt.for_run(config.precision, _wants_compile(
            config, config.max_epochs * train_src.steps_per_epoch, rt.device))
        model = _prepare(model, rt.device)
        trainee = SingleTrainee(model, _wrap(model, rt))
        st = _state(trainee, config, [config.seed], rt, [name or type(model).__name__],
                    train_src.n, 0 if test_src is None else test_src.n)
        path = None if checkpoint is None else Path(checkpoint)
        identity = {} if path is None else _identity(trainee, train, test, config,
                                                     [config.seed], lab)
        return _run(trainee, train_src, test_src, config, rt, st, identity, path, progress)[0]


def fit_many(models: Sequence[nn.Module], train, config: TrainConfig, test=None, *,
             seeds: Sequence[int] | None = None, labels: torch.Tensor | None = None,
             device: Runtime | torch.device | str | None = None, strategy: str = "auto",
             progress: bool | None = None, name: str = "") -> list[RunResult]:
    """Train K models of one architecture side by side, each with its own seed (data order,
    augmentation, dropout) and optionally its own labels ((K, N) ``labels``); each stops on
    its own stop rule.

    strategy: "vmap" stacks the K models and trains them in one vectorized launch
    (torch.func; BatchNorm running statistics are stacked and updated per model);
    "sequential" trains them one after the other with ``fit``; "auto" picks vmap on CUDA and
    sequential on the CPU, where training is compute-bound and vmap is measured slower.
    K = 1 is ``fit`` (channels_last applies). torch.compile applies to both paths, by the same
    rule as ``fit`` (``config.compile``; "auto": on CUDA for runs of at least
    ``COMPILE_MIN_STEPS`` steps); under vmap the vectorized call is compiled.

    What equals what: vmap equals K sequential fits (same seeds) for models without dropout,
    to float rounding. With dropout, vmap draws every model's masks from one generator
    seeded with the first seed (``randomness="different"``): the masks differ between models
    and the launch is reproducible for the same seed list, but model i's masks are not those
    of its sequential fit, so its numbers match the sequential run in distribution only.
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
    n = len(_arrays(train, "training")[1]) if not hasattr(train, "stream_dataset") else None
    if labels is not None and tuple(labels.shape) != (k, n):
        raise ConfigError(f"fit_many: labels must have shape (K={k}, N={n}), "
                          f"got {tuple(labels.shape)}")
    checks.check_inputs(models, train, test, labels=labels, seeds=seeds, where="fit_many")
    rt = Runtime.of(device, _data_device(train)).join()
    if rt.active:
        return _fit_many_over_ranks(models, train, config, test, seeds, labels, rt, strategy,
                                    progress, name)
    if strategy == "auto":
        strategy = "vmap" if rt.device.type == "cuda" else "sequential"
    if k == 1 or strategy == "sequential":
        return [_fit(m, train, config.replace(seed=s), test, rt, None, progress, name,
                     None if labels is None else labels[i])
                for i, (m, s) in enumerate(zip(models, seeds))]
    models = [m.to(rt.device) for m in models]
    with rt.seeded(seeds[0]):
        train_src = _source(train, k, labels, config, rt, "training")
        test_src = None if test is None else _source(test, k, None, config, rt, "test")
        rt = rt.for_run(config.precision, _wants_compile(
            config, config.max_epochs * train_src.steps_per_epoch, rt.device))
        trainee = StackedTrainee(list(models), compile=rt.compile)
        st = _state(trainee, config, seeds, rt, [name or type(models[0]).__name__] * k,
                    train_src.n, 0 if test_src is None else test_src.n)
        results = _run(trainee, train_src, test_src, config, rt, st, {}, None, progress)
    for m, state in zip(models, st.final_states):
        m.load_state_dict({n: t.to(rt.device) for n, t in state.items()})
    return results


def _fit_many_over_ranks(models, train, config, test, seeds, labels, rt: Runtime, strategy,
                         progress, name) -> list[RunResult]:
    """Rank r trains models r, r + world, ... (one process each, no gradient exchange), then
    every rank gathers all results in the original order."""
    mine = list(range(rt.rank, len(models), rt.world))
    local = []
    if mine:
        local = fit_many([models[i] for i in mine], train, config, test,
                         seeds=[seeds[i] for i in mine],
                         labels=None if labels is None else labels[mine], device=rt.local(),
                         strategy=strategy, progress=progress, name=name)
    gathered = distributed.all_gather_objects([(i, r.to_json()) for i, r in zip(mine, local)],
                                              rt)
    by_index = dict(item for part in gathered for item in part)
    results = [RunResult.from_json(by_index[i]) for i in range(len(models))]
    for i in mine:
        state = results[i].final_state
        if state is not None:
            models[i].load_state_dict({n: t.to(rt.device) for n, t in state.items()})
    return results


def _data_device(ds) -> torch.device:
    if isinstance(ds, torch.utils.data.TensorDataset) and ds.tensors:
        return ds.tensors[0].device
    return ds.x.device if hasattr(ds, "x") else torch.device("cpu")


def evaluate(model: nn.Module, ds, config: TrainConfig | None = None, *,
             device: Runtime | torch.device | str | None = None, keep_probs: bool = False
             ) -> ModelEvaluation:
    """Loss and accuracy of ``model`` on a whole dataset in eval mode, fp32 (and, on request,
    the per-sample probabilities), through the same evaluation path the engine uses."""
    rt = Runtime.of(device, _data_device(ds)).local()
    config = config or TrainConfig()
    source = _source(ds, 1, None, config, rt, "evaluation")
    result = _evaluate(SingleTrainee(model.to(rt.device)), source, rt, keep_probs)
    return ModelEvaluation(result.loss[0], result.acc[0],
                           result.probs[0] if keep_probs else None)
