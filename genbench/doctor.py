"""``genbench doctor``: is this machine's engine path correct, and how fast is it?

One command a user runs on a new machine (and that every run on a lent GPU starts with). It
reports torch / CUDA / cuDNN, then checks on tiny problems what a long reproduction relies
on: a resumed run equals an uninterrupted one, two runs are bitwise equal, every precision /
compile / channels_last path trains with finite losses, vmap equals sequential fits (with
BatchNorm), DDP where there are two or more GPUs; and it times ``fit`` against a minimal
device-resident loop and a DataLoader loop, and ``fit_many`` against K sequential fits, as
ratios (a ratio is comparable across machines; a time is not). Exit status 1 if any check
fails. The baseline loops live here and the engine benchmarks reuse them.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset

from genbench.training import TrainConfig, fit, fit_many
from genbench.training.runtime import Runtime


@dataclass(frozen=True)
class Arrays:
    """Images and labels, the two fields of a dataset ``fit`` reads."""

    x: torch.Tensor
    y: torch.Tensor
    name: str = "doctor"


def synthetic(n: int, shape: tuple[int, ...], device: torch.device, seed: int = 0) -> Arrays:
    g = torch.Generator().manual_seed(seed)
    return Arrays(torch.randn(n, *shape, generator=g).to(device),
                  torch.randint(0, 10, (n,), generator=g).to(device))


def mlp(seed: int, in_features: int, width: int = 512, dropout: float = 0.0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(),
                             nn.Dropout(dropout), nn.Linear(width, 10))


def conv_bn(seed: int, channels: int = 8) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                             nn.Linear(16 * channels, 10))


# ------------------------------------------------------------------------ the baseline loops

def minimal_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig
                 ) -> None:
    """The least a device-resident training loop can do: a permutation per epoch, an index
    per batch, forward, loss, backward, step. No statistics, no read-back."""
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          **({"fused": True} if x.is_cuda else {}))
    gen = torch.Generator(device=x.device).manual_seed(config.seed)
    model.train()
    for _ in range(config.max_epochs):
        perm = torch.randperm(len(x), generator=gen, device=x.device)
        for start in range(0, len(x), config.batch_size):
            idx = perm[start:start + config.batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def dataloader_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    config: TrainConfig) -> None:
    """The textbook PyTorch loop: host-resident data, a DataLoader, a host-to-device copy and
    an ``.item()`` per step."""
    device = next(model.parameters()).device
    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=config.batch_size,
                        shuffle=True, generator=torch.Generator().manual_seed(config.seed))
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    model.train()
    for _ in range(config.max_epochs):
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()


# ops that only make a new view of a tensor's metadata: no kernel runs on a GPU
METADATA_OPS = ("view", "_unsafe_view", "t", "transpose", "detach", "select", "slice",
                "expand", "squeeze", "unsqueeze", "permute", "alias", "as_strided",
                "lift_fresh", "_record_function_enter_new", "_record_function_exit")


class OpCounter(TorchDispatchMode):
    """Counts the aten ops launched; ``launches`` leaves out metadata-only ops (views), so on
    a GPU each counted op is at least one kernel launch."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def launches(self) -> int:
        return sum(n for op, n in self.ops.items()
                   if op.split(".")[1] not in METADATA_OPS)


def ops_per_step(train: Callable[[int], None], steps_per_epoch: int) -> tuple[float, float]:
    """(launching ops, all aten ops) per optimizer step of ``train(epochs)``: the difference
    between 4 and 2 epochs, so one-off costs (setup, final evaluation) cancel and per-epoch
    ones amortize."""
    counts = []
    for epochs in (2, 4):
        with OpCounter() as counter:
            train(epochs)
        counts.append((counter.launches, sum(counter.ops.values())))
    steps = 2 * steps_per_epoch
    return (counts[1][0] - counts[0][0]) / steps, (counts[1][1] - counts[0][1]) / steps


def op_ratio(device: torch.device, n: int = 2048, batch: int = 64) -> dict[str, float]:
    """aten ops per step, ``fit`` against :func:`minimal_loop` (MLP 1x512, 32 steps an
    epoch; small images, since the count does not depend on their size): the CPU-measurable
    proxy for GPU launch overhead (target: launch_ratio <= 1.3)."""
    data = synthetic(n, (3, 8, 8), device)
    config = TrainConfig(lr=0.01, batch_size=batch, max_epochs=2, precision="fp32",
                         compile="off")
    steps = -(-n // batch)
    fit_ops = ops_per_step(lambda e: fit(mlp(0, 192), data, config.replace(max_epochs=e),
                                         device=device, progress=False), steps)
    loop_ops = ops_per_step(lambda e: minimal_loop(
        mlp(0, 192).to(device), data.x, data.y, config.replace(max_epochs=e)), steps)
    return {"fit_launches_per_step": fit_ops[0], "minimal_launches_per_step": loop_ops[0],
            "launch_ratio": fit_ops[0] / loop_ops[0], "all_ops_ratio": fit_ops[1] / loop_ops[1]}


# ---------------------------------------------------------------------------------- checks

@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class Report:
    device: str
    versions: dict[str, str]
    checks: list[Check] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _versions(device: torch.device) -> dict[str, str]:
    cuda = torch.cuda.is_available()
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": str(torch.version.cuda) if cuda else "none",
            "cudnn": str(torch.backends.cudnn.version()) if cuda else "none",
            "gpus": str(torch.cuda.device_count()), "threads": str(torch.get_num_threads()),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine()}


def _equal_runs(a, b) -> bool:
    same = {k: v for k, v in a.curves.items() if k != "seconds"} == {
        k: v for k, v in b.curves.items() if k != "seconds"}
    return same and a.final == b.final


def check_resume(device: torch.device) -> tuple[bool, str]:
    from genbench.training import engine

    data = synthetic(256, (3, 8, 8), device)
    cfg = TrainConfig(lr=0.05, batch_size=32, max_epochs=3, precision="fp32")
    whole = fit(mlp(0, 192, 64, 0.2), data, cfg, data, progress=False)
    original, calls = engine._train_epoch, {"n": 0}

    def crash_at_second(*args: Any):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.ckpt"
        engine._train_epoch = crash_at_second
        try:
            fit(mlp(0, 192, 64, 0.2), data, cfg, data, checkpoint=path, progress=False)
        except KeyboardInterrupt:
            pass
        finally:
            engine._train_epoch = original
        resumed = fit(mlp(1, 192, 64, 0.2), data, cfg, data, checkpoint=path, progress=False)
    ok = _equal_runs(whole, resumed)
    return ok, "resumed run equals the uninterrupted one" if ok else "resumed run differs"


def check_determinism(device: torch.device) -> tuple[bool, str]:
    data = synthetic(256, (3, 8, 8), device)
    cfg = TrainConfig(lr=0.05, batch_size=32, max_epochs=2, precision="fp32",
                      keep_weights=True)
    a, b = (fit(conv_bn(0), data, cfg, progress=False) for _ in range(2))
    bitwise = all(torch.equal(a.final_state[n], b.final_state[n]) for n in a.final_state)
    ok = bitwise and _equal_runs(a, b)
    return ok, "two runs bitwise equal (fp32, conv + BatchNorm)" if ok else "runs differ"


def check_paths(device: torch.device, compile_too: bool) -> tuple[bool, str]:
    data = synthetic(256, (3, 8, 8), device)
    cfg = TrainConfig(lr=0.05, batch_size=64, max_epochs=2)
    bad, tried = [], []
    for precision in ("fp32", "bf16"):
        for compile in (("off", "on") if compile_too else ("off",)):
            for name, build in (("mlp", lambda: mlp(0, 192, 64)), ("conv_bn", lambda: conv_bn(0))):
                if compile == "on" and name == "conv_bn" and device.type == "cpu":
                    continue  # one compiled model is enough on a CPU (minutes otherwise)
                r = fit(build(), data, cfg.replace(precision=precision, compile=compile),
                        progress=False)
                label = f"{name}/{precision}/compile={compile}"
                tried.append(label)
                if not all(torch.isfinite(torch.tensor(r.curves["train_loss"]))):
                    bad.append(label)
        # BatchNorm under vmap is its own path (its CUDA backward refused bf16 input once)
        runs = fit_many([conv_bn(0), conv_bn(1)], data, cfg.replace(precision=precision,
                        compile="off"), strategy="vmap", progress=False)
        tried.append(f"conv_bn x2 vmap/{precision}")
        if not all(torch.isfinite(torch.tensor(r.curves["train_loss"])).all() for r in runs):
            bad.append(tried[-1])
    cl = " (conv: channels_last)" if device.type == "cuda" else ""
    return not bad, (f"non-finite: {', '.join(bad)}" if bad
                     else f"finite losses on {len(tried)} paths{cl}")


def check_vmap(device: torch.device) -> tuple[bool, str]:
    data = synthetic(128, (3, 8, 8), device)
    cfg = TrainConfig(lr=0.05, batch_size=32, max_epochs=2, precision="fp32")
    worst = 0.0
    for build in (lambda s: mlp(s, 192, 64), conv_bn):
        together = fit_many([build(s) for s in (0, 1)], data, cfg, data, seeds=[0, 1],
                            strategy="vmap", progress=False)
        for s, r in zip((0, 1), together):
            alone = fit(build(s), data, cfg.replace(seed=s), data, progress=False)
            worst = max(worst, abs(r.final["test_loss"] - alone.final["test_loss"]))
    return worst < 1e-4, f"max |test loss difference| {worst:.2e} (MLP, conv + BatchNorm)"


def check_ddp(device: torch.device) -> tuple[bool | None, str]:
    if device.type != "cuda" or torch.cuda.device_count() < 2:
        return None, "skipped: fewer than 2 GPUs (tests/test_distributed.py runs 2 gloo ranks)"
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           str(Path(__file__).resolve().parents[1] / "tests" / "test_distributed.py")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return done.returncode == 0, (done.stdout.strip().splitlines() or ["no output"])[-1]


def _time(fn: Callable[[], None], device: torch.device, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def timings(device: torch.device) -> dict[str, float]:
    """Ratios (baseline time / engine time: above 1 means the engine is faster)."""
    gpu = device.type == "cuda"
    n, k, epochs = (50_000, 32, 3) if gpu else (1_000, 4, 2)
    data = synthetic(n, (3, 32, 32), device)
    cfg = TrainConfig(lr=0.01, batch_size=128, max_epochs=epochs, eval_every=epochs)
    t_fit = _time(lambda: fit(mlp(0, 3072), data, cfg, progress=False), device)
    t_min = _time(lambda: minimal_loop(mlp(0, 3072).to(device), data.x, data.y, cfg), device)
    t_dl = _time(lambda: dataloader_loop(mlp(0, 3072).to(device), data.x, data.y, cfg), device,
                 repeat=1)
    small = synthetic(n // 4, (3, 32, 32), device)
    seq = _time(lambda: fit_many([mlp(s, 3072) for s in range(k)], small, cfg,
                                 strategy="sequential", progress=False), device, repeat=1)
    vm = _time(lambda: fit_many([mlp(s, 3072) for s in range(k)], small, cfg,
                                strategy="vmap", progress=False), device, repeat=1)
    out = {"fit_seconds": t_fit, "fit_vs_minimal_loop": t_min / t_fit,
           "fit_vs_dataloader_loop": t_dl / t_fit, f"fit_many_K{k}_vs_sequential": seq / vm}
    out.update({f"ops_{key}": v for key, v in op_ratio(device).items()})
    return out


def run(device: torch.device | str | None = None) -> Report:
    dev = Runtime.from_env(device or "full").device
    report = Report(device=str(dev), versions=_versions(dev))
    checks: list[tuple[str, Callable[[], tuple[bool | None, str]]]] = [
        ("resume", lambda: check_resume(dev)),
        ("determinism", lambda: check_determinism(dev)),
        ("paths", lambda: check_paths(dev, compile_too=True)),
        ("vmap_equals_sequential", lambda: check_vmap(dev)),
        ("ddp", lambda: check_ddp(dev)),
    ]
    for name, fn in checks:
        t0 = time.perf_counter()
        try:
            ok, detail = fn()
        except Exception as err:  # noqa: BLE001 - a doctor reports every failure, then exits 1
            ok, detail = False, f"{type(err).__name__}: {err}"
        if ok is None:  # skipped
            ok, detail = True, detail
        report.checks.append(Check(name, bool(ok), detail, time.perf_counter() - t0))
    t0 = time.perf_counter()
    try:
        report.timings = timings(dev)
        report.checks.append(Check("timings", True, "measured", time.perf_counter() - t0))
    except Exception as err:  # noqa: BLE001
        report.checks.append(Check("timings", False, f"{type(err).__name__}: {err}",
                                   time.perf_counter() - t0))
    return report


def main(device: str | None = None, as_json: bool = False) -> int:
    report = run(device)
    if as_json:
        print(json.dumps({"device": report.device, "versions": report.versions,
                          "ok": report.ok, "checks": [asdict(c) for c in report.checks],
                          "timings": report.timings}, indent=2))
    else:
        print(f"genbench doctor on {report.device}: " + ", ".join(
            f"{k} {v}" for k, v in report.versions.items()))
        for c in report.checks:
            print(f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<24} {c.detail} ({c.seconds:.1f} s)")
        for key, value in report.timings.items():
            print(f"  {key:<32} {value:.2f}")
    return 0 if report.ok else 1


__all__ = ["main", "run", "minimal_loop", "dataloader_loop", "op_ratio", "OpCounter",
           "synthetic", "mlp", "conv_bn"]
