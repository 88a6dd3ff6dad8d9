"""``genbench plan``: what each claim case costs, here and on one GPU, before anything runs.

For every claim case that pytest collects (``pytest claims --collect-only --scale full -k ...``)
the plan computes the case's *work* from its claim module's own ``SETTINGS`` and states it in
FLOP, then turns the work into time with rates measured on this machine a few seconds earlier:

* training: forward FLOP per image counted on the model itself
  (:class:`torch.utils.flop_counter.FlopCounterMode` on one batch) x 3 (forward + backward)
  x images x epochs x runs, plus the test evaluations (forward only). Runs with a stop rule
  (100% train accuracy) are costed at their epoch *budget*: an upper bound, said in the notes.
* solvers: their operation counts (Cholesky n^3/3, Gram n^2 d, triangular solve n^2, ...).

Rates (:func:`calibrate`): achieved FLOP/s of a float64 and a float32 matmul, and of a training
step of a small MLP and a small conv net (FLOP counted the same way). A part of the work is
timed with the rate of its kind, plus a fixed per-case overhead (pytest start, imports, data).
The GPU column is one GPU as measured on an NVIDIA H200 (:data:`GPU`): a training step costs a
floor (kernel launches and the optimizer: the small models here are bound by them, not by FLOP)
plus its FLOP at the rate achieved for its kind. The solvers' float32/float64 rates are still the
spec sheet x 0.5 (no solver has run on a GPU). ``genbench run --device cuda`` campaigns order
and budget by this column.

Why a registry here (:data:`ESTIMATORS`, keyed by claim id) rather than a ``cost=`` argument on
each claim: the claim files stay what they are (the papers' statements), and the estimators
read only the declarative ``SETTINGS`` those files already define, so a settings change moves the
estimate with it. A claim module may instead declare its own cost as data,
``PLAN_WORK = {"ID": lambda case, scale: Work(...)}``, which takes precedence (used by claims
outside this repository and by the tests). A claim without an estimator is listed with "no cost model" and the campaign
runs it last. The estimate assumes a cold run cache: claims sharing runs (consensus members,
extreme-overfitting studies) each show the full cost, and whichever runs first pays it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Sequence

from genbench.errors import ConfigError, GenbenchError

GIB = 2**30
CASE_OVERHEAD_S = 20.0  # pytest start, torch import, collection: measured 5-27 s per case here
BASE_MEMORY = int(0.8 * GIB)  # pytest + torch before any work (measured peak: 0.81 GiB)
# Iterative solvers take many tiny steps whose cost is Python and dispatch, not FLOP: 0.28 ms per
# step measured (Z.S5.sgd_min_norm, 320,000 steps in 89.5 s on this shared CPU).
CPU_STEP_S = 2.8e-4
KINDS = ("float64", "float32", "mlp", "conv")

# Sizes of the splits as they exist here (CIFAR-10's test split is partial: 1,000 of 10,000).
DATASETS: dict[str, tuple[tuple[int, int, int], int, int]] = {
    "mnist": ((1, 28, 28), 60_000, 10_000),
    "fashion_mnist": ((1, 28, 28), 60_000, 10_000),
    "cifar10": ((3, 32, 32), 50_000, 1_000),
    "usps": ((1, 16, 16), 7_291, 2_007),
}
ZHANG_SHAPE = (3, 28, 28)  # Zhang's preprocessing crops CIFAR-10 to 28 x 28


# ----------------------------------------------------------------------------- work


@dataclass(frozen=True)
class Part:
    """One piece of a case's work: ``flop`` at the rate of ``kind``, peaking at ``memory``."""

    what: str
    kind: str
    flop: float
    memory: int = 0
    steps: int = 0  # optimizer steps or solver iterations (a GPU's floor: see GPU)
    # runs this part trains that other cases read from the run cache (an extreme-overfitting
    # study's group, Table 1's true-label run): named alike in every case that shares them, so a
    # campaign that has run one of those cases counts them as paid for the next (campaign.py)
    shared: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"Part.kind={self.kind!r}; allowed: {KINDS}")


@dataclass(frozen=True)
class GpuModel:
    """One GPU's cost model: a part takes ``steps x step_s[kind] + FLOP / rate[kind]`` seconds.

    A frozen record of one measurement (the numbers below), so a plan carries the model it was
    computed under and a test can pass another one."""

    name: str
    step_s: dict[str, float]  # seconds per training step / solver iteration, by part kind
    rate: dict[str, float]  # achieved FLOP/s beyond the per-step floor, by part kind

    def seconds(self, part: Part) -> float:
        """A part's time on this GPU: its steps at the floor plus its FLOP at the rate."""
        return part.steps * self.step_s[part.kind] + part.flop / self.rate[part.kind]


# Training (mlp, conv) measured on an NVIDIA H200, torch 2.11, bf16 autocast, eager, batch 128
# (docs/results/gpu-h200-2026-12-04): mlp_1x512's step (9.3e8 FLOP) took 1.29 ms, the floor;
# beyond it conv ran at 12.5 TFLOP/s (inception_small) to 18.2 (eo_cnn x20 under vmap), 5.6
# (alexnet_small); MLPs at 4.6 (eo_mlp x20). The compiled eo_cnn x20 step took 4.4 ms against
# 6.0 eager: compiled runs come in under this. Solvers (float32 without TF32, float64 tensor
# cores): H100/H200 spec 67 TFLOP/s x 0.5 and an assumed 0.3 ms per iteration, not yet measured.
GPU = GpuModel(
    name="NVIDIA H200 (measured 2026-12-04; solvers: spec x 0.5)",
    step_s={"mlp": 1.3e-3, "conv": 1.3e-3, "float32": 3e-4, "float64": 3e-4},
    rate={"mlp": 4.6e12, "conv": 15e12, "float32": 33.5e12, "float64": 33.5e12},
)


@dataclass(frozen=True)
class Work:
    """What a case computes: its parts, and notes on what the count assumes."""

    parts: tuple[Part, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def flop(self) -> float:
        return sum(p.flop for p in self.parts)

    @property
    def memory(self) -> int:
        """Peak bytes: the process base plus the largest part (parts run one after another)."""
        return BASE_MEMORY + max((p.memory for p in self.parts), default=0)

    def __add__(self, other: Work) -> Work:
        return Work(self.parts + other.parts, tuple(dict.fromkeys(self.notes + other.notes)))


@dataclass(frozen=True)
class Rates:
    """Achieved FLOP/s on this machine, per kind of work (see :func:`calibrate`)."""

    float64: float
    float32: float
    mlp: float
    conv: float
    threads: int = 0
    seconds: float = 0.0

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True)
class CaseRef:
    """A collected claim case: pytest's node id, the claim id and the case id (or None)."""

    node_id: str
    claim: str
    case: str | None
    scale: str
    module: str  # path of the claim file, relative to the rootdir


@dataclass(frozen=True)
class Estimate:
    """A case with its work turned into time and memory, and whether it fits the limits."""

    node_id: str
    claim: str
    case: str | None
    scale: str
    module: str
    flop: float | None
    seconds: float | None  # on this machine, per-case overhead included
    gpu_seconds: float | None  # on one GPU (see GPU), per-case overhead included
    memory: int | None
    fits: bool
    why_not: str = ""
    parts: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str | None, str]:
        return self.claim, self.case, self.scale


@dataclass(frozen=True)
class Plan:
    """Every selected case's estimate, with the rates and limits it was computed under."""

    scale: str
    rates: Rates
    budget_s: float | None
    memory_limit: int | None
    gpu: GpuModel
    cases: tuple[Estimate, ...] = field(default_factory=tuple)

    def on_gpu(self) -> Plan:
        """The plan as a campaign on one GPU sees it: each case's time is its GPU column (the
        parts' too, for what a campaign has already paid), so cuda campaigns order, budget and
        report their estimates by it rather than by the CPU's."""
        cases = tuple(dataclasses.replace(
            e, seconds=e.gpu_seconds,
            parts=tuple({**p, "seconds": p["gpu_seconds"]} for p in e.parts)) for e in self.cases)
        return dataclasses.replace(self, cases=cases)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Inverse of :meth:`to_json` (a plan computed in another process)."""
        data = json.loads(text)
        cases = tuple(Estimate(**{**c, "parts": tuple(c["parts"]), "notes": tuple(c["notes"])})
                      for c in data.pop("cases"))
        return cls(**{**data, "rates": Rates(**data["rates"]), "gpu": GpuModel(**data["gpu"]),
                      "cases": cases})


# ----------------------------------------------------------------------------- calibration


def calibrate(seconds: float = 0.4) -> Rates:
    """Measure achieved FLOP/s: matmuls (float64, float32) and two training steps (MLP, conv).

    Each kind runs one warm-up, then repeats for about ``seconds``; FLOP of the training steps
    are counted with FlopCounterMode (forward and backward), the same counter the estimates use.
    """
    import torch
    from torch import nn

    start = time.perf_counter()
    g = torch.Generator().manual_seed(0)

    def timed(step: Callable[[], None]) -> float:
        step()
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            if time.perf_counter() - t0 >= seconds and n >= 2:
                return (time.perf_counter() - t0) / n

    rates: dict[str, float] = {}
    for kind, dtype, size in (("float64", torch.float64, 768), ("float32", torch.float32, 1024)):
        a = torch.randn(size, size, generator=g, dtype=dtype)
        rates[kind] = 2 * size**3 / timed(lambda a=a: a @ a)

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 512), nn.ReLU(), nn.Linear(512, 10))
    conv = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
    for kind, model in (("mlp", mlp), ("conv", conv)):
        x = torch.randn(128, *ZHANG_SHAPE, generator=g)
        y = torch.randint(10, (128,), generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step(model: nn.Module = model, opt: Any = opt, x: Any = x, y: Any = y) -> None:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        rates[kind] = _counted_flop(step) / timed(step)
    return Rates(**rates, threads=torch.get_num_threads(),
                 seconds=round(time.perf_counter() - start, 2))


def _counted_flop(step: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


# ----------------------------------------------------------------------------- model counting

_MODEL_CACHE: dict[tuple[Any, ...], tuple[float, int, int, str]] = {}


def model_cost(name: str, in_shape: Sequence[int], num_classes: int = 10,
               **options: Any) -> tuple[float, int, int, str]:
    """(forward FLOP per image, parameters, activation floats per image, kind) of a registered
    model, counted on one batch of 2 images in eval mode (FlopCounterMode)."""
    key = (name, tuple(in_shape), num_classes, tuple(sorted(options.items())))
    if key not in _MODEL_CACHE:
        import torch
        from torch import nn

        from genbench.models import build, count_params

        model = build(name, tuple(in_shape), num_classes, **options).eval()
        activations = [0]

        def hook(_: nn.Module, __: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                activations[0] += out[0].numel()

        leaves = [m for m in model.modules() if not list(m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            with torch.no_grad():
                flop = _counted_flop(lambda: model(torch.zeros(2, *in_shape))) / 2
        finally:
            for h in handles:
                h.remove()
        kind = "conv" if any(isinstance(m, nn.Conv2d) for m in leaves) else "mlp"
        _MODEL_CACHE[key] = (flop, count_params(model), activations[0] // 2 or 1, kind)
    return _MODEL_CACHE[key]


def training(model: str, dataset: str, *, images: int | None = None, epochs: int, runs: int = 1,
             evals: int = 1, eval_images: int | None = None, batch: int = 128,
             in_shape: Sequence[int] | None = None, num_classes: int = 10,
             label: str = "", shared: str = "", **options: Any) -> Part:
    """``runs`` trainings of ``model`` for ``epochs`` over ``images`` plus ``evals`` test passes."""
    shape, n_train, n_test = DATASETS[dataset]
    shape = tuple(in_shape or shape)
    images = n_train if images is None else images
    eval_images = n_test if eval_images is None else eval_images
    fwd, params, acts, kind = model_cost(model, shape, num_classes, **options)
    flop = runs * (3 * fwd * images * epochs + fwd * eval_images * evals)
    data = 4 * math.prod(shape) * (images + eval_images)
    memory = data + 4 * 4 * params + 4 * 3 * acts * batch  # params, grads, 2 Adam moments
    what = (f"{label + ': ' if label else ''}train {model} on {dataset} {images:,} images x "
            f"{epochs} epochs x {runs} run{'s' * (runs != 1)}")
    # runs of one group train side by side (fit_many: K models per launch), so the launch floor
    # counts one group's steps, not K times them
    return Part(what, kind, flop, memory, steps=epochs * math.ceil(images / batch), shared=shared)


def solver(what: str, flop: float, memory: float, dtype: str = "float64", steps: int = 0) -> Part:
    return Part(what, dtype, float(flop), int(memory), steps=steps)


def _itemsize(dtype: str) -> int:
    return 8 if dtype == "float64" else 4


def kernel_solve(n: int, d: int, what: str, n_eval: int = 0, dtype: str = "float64",
                 k: int = 10, features: str = "float64", held: int = 0) -> Part:
    """Gaussian-kernel interpolation: Gram n^2 d, Cholesky n^3/3, solve 2 n^2 k, evaluation.

    Memory: the solve (theory.kernel_solve_bytes: the data are copied only when ``features``,
    their stored dtype, differs from the solve's), the cached features themselves, and ``held``:
    other cached features alive at the same time (another kind's, in the same case)."""
    flop = 2 * n * n * d + n**3 / 3 + 2 * n * n * k + 2 * n * (n + n_eval) * d
    copy = n * d if features != dtype else 0
    memory = (_itemsize(dtype) * (n * n + copy + 2 * n * k + 256 * n)
              + _itemsize(features) * (n + n_eval) * d + held)
    return solver(f"{what}: kernel interpolation n={n:,}, d={d:,}", flop, memory, dtype)


def largest_kernel_n(memory: int, d: int, n_eval: int = 10_000, dtype: str = "float64") -> int:
    """The largest n whose kernel solve (and process base) fits in ``memory`` bytes."""
    lo, hi = 1, 10**7
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if BASE_MEMORY + kernel_solve(mid, d, "", n_eval, dtype).memory <= memory:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ----------------------------------------------------------------------------- estimators

Estimator = Callable[[ModuleType, "str | None", str], Work]
ESTIMATORS: dict[str, Estimator] = {}
UPPER = "upper bound: runs stop at 100% train accuracy, costed at their epoch budget"


def estimates(*claim_ids: str) -> Callable[[Estimator], Estimator]:
    def register(fn: Estimator) -> Estimator:
        for claim_id in claim_ids:
            ESTIMATORS[claim_id] = fn
        return fn
    return register


def _pick(case: str | None, names: Sequence[str]) -> list[str]:
    """The names a case id selects (``mlp_1x512`` -> that model); all of them for no case."""
    if case:
        chosen = [n for n in sorted(names, key=len, reverse=True) if n in case]
        if chosen:
            return [chosen[0]]
    return list(names)


# Zhang et al., theory (Appendix C, Section 5) -------------------------------------------

@estimates("Z.Th1.interpolation")
def _theorem1(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    n, d = s.mnist_n, 784
    # build A (n^2), forward substitution (n^2), evaluation and the error bound (~4 n^2), the
    # projection (2 n d); peak: one n x n float64 matrix at a time (A and the forward pass are
    # built in place, the bound in row chunks): measured 1.02 x 8 n^2 above the process at
    # n = 12,000 (it was 2.0 x before both were made in place)
    matrix = 8 * n * n
    prop = s.examples * 40**2 * 10
    data = 60_000 * d * (1 + 8)  # the decoded split (uint8) and its float64 flat copy
    return Work((solver(f"Theorem 1 on {n:,} MNIST images", 7 * n * n + 2 * n * d,
                        1.05 * matrix + data),
                 solver(f"{s.examples} hypothesis examples", prop, 0)))


@estimates("Z.L1.interleaving")
def _lemma1(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    return Work((solver(f"{s.examples} sequences, n <= 60: eigvals + rank", s.examples * 30 * 60**3,
                        8 * 60 * 60 * 4),))


@estimates("Z.C1.depth_k")
def _depth_k(module: ModuleType, case: str | None, scale: str) -> Work:
    """Per (n, d, k): the construction and its float64 error bound (as Theorem 1, ~7 n^2), and
    the explicit network's forward pass on the n points: k - 2 hidden layers of width
    w = ceil(n / (k - 2)) + 3, stored dense (w x w float64 between hidden layers)."""
    cases = module.SETTINGS[scale].depth_cases
    flop, peak = 0.0, 0.0
    for n, d, k in cases:
        w = math.ceil(n / max(k - 2, 1)) + 3
        layers = d * 1 + w + max(k - 3, 0) * w * w + w
        flop += 7 * n * n + 2 * n * d + 2 * n * layers
        peak = max(peak, 2.15 * 8 * n * n, 8 * (max(k - 3, 0) * w * w + 2 * n * w))
    return Work((solver(f"{len(cases)} constructions, n up to {max(c[0] for c in cases):,}",
                        flop, peak),))


@estimates("Z.S5.hessian")
def _hessian(module: ModuleType, case: str | None, scale: str) -> Work:
    """Hessians (d x d) of the loss at the minima and at the control points: each a d-fold
    Jacobian of a gradient over n points (~4 n d^2 FLOP)."""
    s = module.SETTINGS[scale]
    n, d = s.minnorm_n, 784
    count = 2 * s.hessian_minima
    return Work((solver(f"{count} Hessians of a loss over n={n}, d={d}", count * 4 * n * d * d,
                        8 * (4 * d * d + n * d) + 60_000 * d * 9),))


@estimates("Z.S5.sgd_min_norm")
def _least_squares(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    n, d = s.minnorm_n, 784
    steps = 2 * (s.gd_steps + s.sgd_steps)  # from w = 0 and from N(0, I)
    flop = 4 * n * d * 2 * s.gd_steps + 4 * d * 2 * s.sgd_steps + 2 * s.hessian_minima * n * d * d
    return Work((solver(f"least squares n={n}, d={d}: {s.gd_steps:,} GD + {s.sgd_steps:,} SGD "
                        f"steps x 2 starts, {s.hessian_minima} Hessians", flop,
                        8 * (n * d + 4 * d * d) + 60_000 * d * 9, steps=steps),))


@estimates("Z.S5.kernel_fit_any")
def _kernel_fit_any(module: ModuleType, case: str | None, scale: str) -> Work:
    n = module.SETTINGS[scale].fit_any_n
    parts = []
    for data, d in (("mnist", 784), ("cifar10", 3072)):
        # features() holds the whole split as float64 (plus a float32 transient while converting)
        _, n_train, n_test = DATASETS[data]
        held = (n_train + n_test) * d * (8 + 4)
        parts += [Part(p.what, p.kind, p.flop, p.memory + held)
                  for p in (kernel_solve(n, d, f"{data}, {labels} labels")
                            for labels in ("true", "random"))]
    return Work(tuple(parts))


def _curve(ns: Iterable[int], d: int, what: str, n_eval: int, dtype: str = "float64"
           ) -> list[Part]:
    return [kernel_solve(n, d, what, n_eval, dtype) for n in ns]


def _precision_check(s) -> list[Part]:
    """The float64 solves (raw pixels and Gabor features) that measure what a lower MNIST
    precision moves (if any)."""
    if s.precision_check_n is None:
        return []
    return [kernel_solve(s.precision_check_n, d, f"MNIST {kind}, float64 precision check", 10_000)
            for kind, d in (("raw", 784), ("Gabor", 1176))]


@estimates("Z.T3.kernel_mnist")
def _kernel_mnist(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    dtype = s.mnist_precision.dtype
    parts = (_curve(s.mnist_ns, 784, "MNIST raw", 10_000, dtype)
             + _curve(s.mnist_ns, 1176, "MNIST Gabor", 10_000, dtype) + _precision_check(s))
    return Work(tuple(parts))


@estimates("Z.T3.kernel_cifar")
def _kernel_cifar(module: ModuleType, case: str | None, scale: str) -> Work:
    """Raw-pixel curve (float64), random-conv extraction, its curve and l2 solve at the conv
    precision, and (full) the float64 conv solve that checks that precision. The raw features
    (all 51,000 images, float64) stay cached while the conv solves run."""
    s = module.SETTINGS[scale]
    features, n_test = 4 * s.num_filters, DATASETS["cifar10"][2]
    n_img = max(s.conv_ns) + n_test
    raw_held = 8 * (DATASETS["cifar10"][1] + n_test) * 3072
    extract = solver(f"random conv features: {s.num_filters:,} filters on {n_img:,} images",
                     2 * n_img * s.num_filters * 108 * 27 * 27,
                     _itemsize(s.conv_dtype) * n_img * features + raw_held,
                     "float32")

    def conv(n: int, what: str, dtype: str = s.conv_precision.dtype) -> Part:
        return kernel_solve(n, features, what, n_test, dtype, features=s.conv_dtype,
                            held=raw_held + _itemsize(s.conv_dtype) * (n_img - n - n_test) * features)

    parts = ([kernel_solve(n, 3072, "CIFAR-10 raw", n_test, held=raw_held - 8 * (n + n_test) * 3072)
              for n in s.cifar_ns] + [extract]
             + [conv(n, "CIFAR-10 random conv") for n in s.conv_ns]
             + [conv(max(s.conv_ns), "CIFAR-10 random conv + l2")])
    if s.conv_check_n is not None:
        parts.append(conv(s.conv_check_n, "CIFAR-10 random conv, float64 precision check",
                          "float64"))
    return Work(tuple(parts))


@estimates("Z.S5.norm_not_predictive")
def _norm(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    n, dtype = s.mnist_ns[-1], s.mnist_precision.dtype
    train, test = s.wrong_test
    return Work((kernel_solve(n, 784, "MNIST raw", 10_000, dtype),
                 kernel_solve(n, 1176, "MNIST Gabor", 10_000, dtype),
                 kernel_solve(train, 784, "train only", 0, dtype),
                 kernel_solve(train + test, 784, "train + true test", 0, dtype),
                 kernel_solve(train + test, 784, "train + wrong test", 0, dtype),
                 *_precision_check(s)))


@estimates("Z.S2.rademacher")
def _rademacher(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    shape = ZHANG_SHAPE if s.data.preprocess == "zhang" else None
    n = s.data.n_train or DATASETS[s.data.dataset][1]
    evals = max(1, s.config.max_epochs // max(1, s.config.eval_every))
    return Work((training(s.model, s.data.dataset, images=n, epochs=s.config.max_epochs,
                          runs=s.k_draws, evals=evals, eval_images=n, in_shape=shape,
                          num_classes=2, batch=s.config.batch_size),), (UPPER,))


# Zhang et al., randomization tests (Tables 1, 4, Figure 1, Section 3) --------------------

def _zhang_runs(module: ModuleType, scale: str, models: Sequence[str], runs: int, label: str,
                epochs: int | None = None, shared: bool = False) -> list[Part]:
    parts = []
    for model in models:
        b = module.budget(scale, model)
        parts.append(training(model, "cifar10", images=b.n_train, epochs=epochs or b.max_epochs,
                              runs=runs, evals=epochs or b.max_epochs, eval_images=b.n_test,
                              in_shape=ZHANG_SHAPE, batch=b.batch_size, label=label,
                              shared=f"{label}: {model}" if shared else ""))
    return parts


def _zhang_models(module: ModuleType, case: str | None) -> list[str]:
    return _pick(case, tuple(module.MLPS) + tuple(module.CONVS))


@estimates("Z.T1.fit_random")
def _table1_random(module: ModuleType, case: str | None, scale: str) -> Work:
    return Work(tuple(_zhang_runs(module, scale, _zhang_models(module, case), 1,
                                  "Table 1 random labels")), (UPPER,))


@estimates("Z.T1.true_labels", "Z.S3.early_stopping")
def _table1(module: ModuleType, case: str | None, scale: str) -> Work:
    """The true-label runs of Table 1 (shared by both claims through the run cache)."""
    return Work(tuple(_zhang_runs(module, scale, _zhang_models(module, case), 1,
                                  "Table 1 true labels", shared=True)), (UPPER,))


@estimates("Z.T1.regularizers")
def _regularizers(module: ModuleType, case: str | None, scale: str) -> Work:
    # Table 1's 9 regularized rows: Inception 4 (crop / wd / both, and BN-free), AlexNet 2,
    # MLP 1x512 1, MLP 3x512 2 (weight decay); a case names its model
    rows = {"inception_small": 4, "inception_small_nobn": 1, "alexnet_small": 2, "mlp_1x512": 1,
            "mlp_3x512": 1}
    models = _zhang_models(module, case)
    parts = [p for m in models for p in _zhang_runs(module, scale, [m], 1 if case else rows[m],
                                                    f"regularized row {case or 'all'}")]
    # each row's gain is measured against its model's unregularized run: Table 1's true-label
    # run, which Z.T1.true_labels and Z.S3.early_stopping share through the run cache
    parts += _zhang_runs(module, scale, models, 1, "Table 1 true labels", shared=True)
    return Work(tuple(parts), (UPPER,))


@estimates("Z.F1a.input_randomization")
def _input_randomization(module: ModuleType, case: str | None, scale: str) -> Work:
    model = "inception_small" if scale == "full" else "mlp_1x512"
    corruptions = 1 if case else 5
    return Work(tuple(_zhang_runs(module, scale, [model], corruptions, "Figure 1a")), (UPPER,))


def _sweep(module: ModuleType, case: str | None, scale: str, seeds: Sequence[int]) -> Work:
    """Figure 1's label-noise sweep: per model and weight seed, one run per p in {0, 0.2, ...,
    1} side by side, the test set evaluated once at the end (``eval_every`` = the epoch budget).
    Each seed's sweep is a shared part: Figure 1c trains seed 0, Figure 1b reads it from the
    run cache and adds its other seeds."""
    models = ["mlp_1x512"] if scale == "smoke" else _pick(case, ("mlp_1x512", "alexnet_small",
                                                                 "inception_small"))
    levels = 6  # p in {0, 0.2, ..., 1}
    parts = []
    for m in models:
        b = module.sweep_budget(scale, m)
        parts += [training(m, "cifar10", images=b.n_train, epochs=b.max_epochs, runs=levels,
                           evals=1, eval_images=b.n_test, in_shape=ZHANG_SHAPE,
                           batch=b.batch_size, label=f"label-noise sweep, weight seed {seed}",
                           shared=f"label-noise sweep, weight seed {seed}: {m}")
                  for seed in seeds]
    return Work(tuple(parts), (UPPER,))


@estimates("Z.F1c.test_error")
def _sweep_test_error(module: ModuleType, case: str | None, scale: str) -> Work:
    return _sweep(module, case, scale, (module.SEED,))


@estimates("Z.F1b.slowdown")
def _sweep_slowdown(module: ModuleType, case: str | None, scale: str) -> Work:
    return _sweep(module, case, scale, module.SWEEP_SEEDS)


@estimates("Z.T4.wd_random")
def _wd_random(module: ModuleType, case: str | None, scale: str) -> Work:
    models = _pick(case, ("mlp_1x512", "mlp_3x512", "alexnet_small", "inception_small"))
    runs = 2 if not case or "alexnet" in case else 1  # AlexNet: with and without weight decay
    return Work(tuple(_zhang_runs(module, scale, models, runs, "Table 4 weight decay")), (UPPER,))


@estimates("Z.T4.aug_random")
def _aug_random(module: ModuleType, case: str | None, scale: str) -> Work:
    # a case names the augmentation (random_crop, flip_rotate) of small Inception's row
    runs = 1 if case else len(getattr(module, "AUGMENTS", (1, 2)))
    return Work(tuple(_zhang_runs(module, scale, ["inception_small"], runs, "Table 4 augmentation",
                                  epochs=module.AUG_EPOCHS[scale])), (UPPER,))


@estimates("Z.S3.batchnorm")
def _batchnorm(module: ModuleType, case: str | None, scale: str) -> Work:
    models = _pick(case, ("inception_small", "inception_small_nobn"))
    return Work(tuple(_zhang_runs(module, scale, models, 1, "Table 1 true labels", shared=True)),
                (UPPER,))


@estimates("Z.T2.imagenet")
def _imagenet(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    fwd, params, acts, kind = model_cost("inception_v3", (3, s.image_size, s.image_size), 1000)
    images, val = 1_281_167, 50_000
    flop = 2 * (3 * fwd * images * s.epochs + fwd * val * s.epochs)  # random and true labels
    memory = 4 * 4 * params + 4 * 3 * acts * s.batch_size
    return Work((Part(f"train inception_v3 on ImageNet {images:,} images x {s.epochs} epochs "
                      f"x 2 runs (true, random labels)", kind, flop, memory),),
                ("ImageNet is streamed from disk, not held in memory",))


# The extreme-overfitting studies (R normal + R Algorithm-1 runs per model/dataset) --------

def _study_parts(s: Any, pairs: Sequence[tuple[str, str]], label: str,
                 groups: Sequence[str] = ("normal", "extreme")) -> list[Part]:
    """The study's groups a case trains: both for the analyses that compare them, only
    ``extreme`` for the cases that read the corrupted-set runs alone (``eo.extreme_runs``)."""
    parts = []
    for model, dataset in pairs:
        _, n_train, n_test = DATASETS[dataset]
        n = s.n_train or n_train
        m = s.n_test or n_test
        corrupted = n + (n // m + 1) * m
        runs, epochs = dict(s.runs)[model], dict(s.epochs)[model]
        for group, images in (("normal", n), ("extreme", corrupted)):
            if group not in groups:
                continue
            parts.append(training(model, dataset, images=images, epochs=epochs, runs=runs,
                                  evals=epochs, eval_images=m, label=f"{label} {group}",
                                  shared=f"{label} {group}: {model}/{dataset}, R = {runs}"))
    return parts


@estimates("E.A1.construction")
def _construction(module: ModuleType, case: str | None, scale: str) -> Work:
    return Work((solver("Algorithm 1's corrupted sets (copies and checks)", 1e8, 2 * GIB),))


def _pairs(module: ModuleType, case: str | None, scale: str, attr: str) -> list[tuple[str, str]]:
    """The (model, dataset) pairs a case names (``eo_mlp-mnist``; ``mnist`` alone: every model
    of the claim on MNIST, as E.S3.resnet_faster compares two models on one data set)."""
    pairs = list(getattr(module.SETTINGS[scale], attr))
    tokens = set((case or "").split("-"))
    return [p for p in pairs if (p[0] in tokens or not tokens & {q[0] for q in pairs})
            and (p[1] in tokens or not tokens & {q[1] for q in pairs})] or pairs


@estimates("E.S3.extreme_point", "E.S3.resnet_faster")
def _extreme(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    pairs = _pairs(module, case, scale, "extreme_pairs")
    if case and "-" not in case:  # resnet_faster[dataset]: the MLP and the ResNet studies
        pairs = [(m, d) for m, d in pairs if m in ("eo_mlp", "eo_resnet")]
    return Work(tuple(_study_parts(s, pairs, "study", groups=("extreme",))))


@estimates("E.S3.distance_from_init")
def _extreme_analysis(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    return Work(tuple(_study_parts(s, _pairs(module, case, scale, "analysis_pairs"), "study")))


@estimates("E.S3.critical_on_clean")
def _extreme_critical(module: ModuleType, case: str | None, scale: str) -> Work:
    """The study, then ``gd_steps`` full-batch GD steps on the clean set from each of the R
    extreme points: at full scale (100 steps of 60,000 images x R) twice the normal group."""
    s = module.SETTINGS[scale]
    pairs = _pairs(module, case, scale, "analysis_pairs")
    parts = _study_parts(s, pairs, "study")
    for model, dataset in pairs:
        n = s.n_train or DATASETS[dataset][1]
        parts.append(training(model, dataset, images=n, epochs=s.gd_steps, batch=n,
                              runs=dict(s.runs)[model], evals=1, eval_images=s.n_test,
                              label="full-batch GD from the extreme points"))
    return Work(tuple(parts))


@estimates("E.S3.l2_does_not_prevent")
def _extreme_l2(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    return Work(tuple(_study_parts(s, _pairs(module, case, scale, "analysis_pairs"),
                                   "study with weight decay", groups=("extreme",))))


@estimates("E.S3.sgd_escapes")
def _escape(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    pairs = _pairs(module, case, scale, "analysis_pairs")
    parts = _study_parts(s, pairs, "study")
    for model, dataset in pairs:
        parts.append(training(model, dataset, images=s.n_train, epochs=dict(s.epochs)[model],
                              runs=s.escape_runs, evals=1, eval_images=s.n_test,
                              label="SGD escape"))
    return Work(tuple(parts))


# The consensus paper -------------------------------------------------------------------

def _consensus_runs(s: Any, what: str) -> list[Part]:
    mnist = s.mnist.n_train or DATASETS["mnist"][1]
    mnist_test = s.mnist.n_test or DATASETS["mnist"][2]
    usps = s.usps.n_train or DATASETS["usps"][1]
    usps_test = s.usps.n_test or DATASETS["usps"][2]
    e, b = s.mnist_epochs, s.batch_size
    if what == "solutions":  # c_cnn from seeds 0 and 1
        return [training("c_cnn", "mnist", images=mnist, epochs=e, runs=2, eval_images=mnist_test,
                         batch=b, label="Section II solutions")]
    if what == "members":  # solutions (both seeds) + c_mlp + c_lenet
        return _consensus_runs(s, "solutions") + [
            training(a, "mnist", images=mnist, epochs=e, eval_images=mnist_test, batch=b,
                     label="member") for a in ("c_mlp", "c_lenet")]
    if what == "dynamics":  # USPS c_cnn, test set evaluated every epoch
        return [training("c_cnn", "usps", images=usps, epochs=s.usps_epochs, evals=s.usps_epochs,
                         eval_images=usps_test, batch=b, label="loss dynamics")]
    if what == "dropout":
        return [training(a, "mnist", images=mnist, epochs=e, runs=3, eval_images=mnist_test,
                         batch=b, label="dropout 0.25/0.5/0.75") for a in ("c_cnn", "c_mlp", "c_lenet")]
    raise ConfigError(f"unknown consensus work {what!r}")


@estimates("C.S2.interpolation")
def _interpolation(module: ModuleType, case: str | None, scale: str) -> Work:
    s = module.SETTINGS[scale]
    fwd = model_cost("c_cnn", DATASETS["mnist"][0])[0]
    test = s.mnist.n_test or DATASETS["mnist"][2]
    alphas = len(module.ALPHAS)
    return Work(tuple(_consensus_runs(s, "solutions"))
                + (Part(f"{alphas} interpolated networks on {test:,} test images", "conv",
                        alphas * fwd * test, 0),))


@estimates("C.S5.loss_distributions")
def _dynamics(module: ModuleType, case: str | None, scale: str) -> Work:
    return Work(tuple(_consensus_runs(module.SETTINGS[scale], "dynamics")))


@estimates("C.S3.val_loss_split")
def _val_loss_split(module: ModuleType, case: str | None, scale: str) -> Work:
    """Figure 2 on MNIST (seed 0 and the spread seeds, the test set evaluated every epoch) and
    Figure 3's split on USPS (shared with C.S5.loss_distributions)."""
    s = module.SETTINGS[scale]
    seeds = 1 + len(getattr(module, "SPREAD_SEEDS", ()))
    mnist = s.mnist.n_train or DATASETS["mnist"][1]
    test = s.mnist.n_test or DATASETS["mnist"][2]
    part = training("c_cnn", "mnist", images=mnist, epochs=s.mnist_epochs, runs=seeds,
                    evals=s.mnist_epochs, eval_images=test, batch=s.batch_size,
                    label="Figure 2 loss dynamics")
    return Work((part, *_consensus_runs(s, "dynamics")))


@estimates("C.A1.consensus", "C.S5.consensus_beats_single")
def _members(module: ModuleType, case: str | None, scale: str) -> Work:
    return Work(tuple(_consensus_runs(module.SETTINGS[scale], "members")))


@estimates("C.S5.dropout")
def _dropout(module: ModuleType, case: str | None, scale: str) -> Work:
    return Work(tuple(_consensus_runs(module.SETTINGS[scale], "dropout")))


@estimates("C.S3.softmax_scale")
def _softmax(module: ModuleType, case: str | None, scale: str) -> Work:
    return Work((solver("softmax of 4 logits", 100, 0),))


# ----------------------------------------------------------------------------- collection


class _Collector:
    """A pytest plugin object that keeps the collected claim items' identities."""

    def __init__(self) -> None:
        self.cases: list[tuple[CaseRef, ModuleType]] = []

    def pytest_collection_finish(self, session: Any) -> None:
        for item in session.items:
            marker = item.get_closest_marker("claim")
            if marker is None:
                continue
            params = getattr(getattr(item, "callspec", None), "params", {})
            scale = params.get("scale")
            if scale is None:
                continue
            ref = CaseRef(node_id=item.nodeid, claim=str(marker.args[0]),
                          case=case_of(item.nodeid, scale), scale=scale,
                          module=item.nodeid.split("::")[0])
            self.cases.append((ref, item.module))


def case_of(node_id: str, scale: str) -> str | None:
    """The case id of a node id: its parametrize id without the scale part (None if only scale)."""
    match = re.search(r"\[(.*)\]$", node_id)
    if not match:
        return None
    parts = [p for p in match.group(1).split("-") if p != scale]
    return "-".join(parts) or None


def collect(scale: str = "full", keyword: str | None = None, claims: str = "claims",
            rootdir: str | Path | None = None) -> list[tuple[CaseRef, ModuleType]]:
    """The claim cases pytest collects at ``scale`` (with ``-k keyword``), with their modules."""
    import pytest

    if scale not in ("smoke", "full"):
        raise ConfigError(f"scale must be smoke or full, got {scale!r}")
    root = Path(rootdir or Path.cwd())
    if not (root / claims).exists():
        raise GenbenchError(f"no {claims}/ under {root}: run `genbench plan` from the root of a "
                            f"genbench checkout")
    collector = _Collector()
    args = [str(root / claims), "--collect-only", "-q", "-p", "no:cacheprovider", "--assert=plain",
            f"--scale={scale}", f"--rootdir={root}"]
    args += ["-k", keyword] if keyword else []
    out = io.StringIO()
    before = set(sys.modules)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = pytest.main(args, plugins=[collector])
    finally:  # forget the claim modules (the plan keeps its references): a later collect of
        # another checkout's claims/ must import its own files, not these
        for name in set(sys.modules) - before:
            origin = str(getattr(sys.modules[name], "__file__", "") or "")
            if origin.startswith(str(root / claims)) or name.split(".")[0] in ("conftest",):
                del sys.modules[name]
    if status not in (0, 5):  # 5: nothing collected (an empty -k selection)
        raise GenbenchError(f"collecting the claims failed (pytest exit status {status}):\n"
                            f"{out.getvalue()[-3000:]}")
    return collector.cases


# ----------------------------------------------------------------------------- the plan


def estimate_case(ref: CaseRef, module: ModuleType, rates: Rates, *,
                  budget_s: float | None = None, memory_limit: int | None = None,
                  gpu: GpuModel = GPU) -> Estimate:
    """One case's estimate; a case without a cost model (or whose model fails) says why."""
    fn = ESTIMATORS.get(ref.claim)
    declared = getattr(module, "PLAN_WORK", {}).get(ref.claim)  # a claim module's own cost
    if declared is not None:
        fn = lambda _module, case, scale: declared(case, scale)  # noqa: E731
    common = dict(node_id=ref.node_id, claim=ref.claim, case=ref.case, scale=ref.scale,
                  module=ref.module)
    if fn is None:
        return Estimate(**common, flop=None, seconds=None, gpu_seconds=None, memory=None,
                        fits=False, why_not=f"no cost model for {ref.claim} in genbench.plan")
    try:
        work = fn(module, ref.case, ref.scale)
    except Exception as err:  # a settings shape the estimator does not know: say so, go on
        return Estimate(**common, flop=None, seconds=None, gpu_seconds=None, memory=None,
                        fits=False, why_not=f"cost model failed: {type(err).__name__}: {err}")
    seconds = CASE_OVERHEAD_S + sum(p.flop / rates.of(p.kind) + _cpu_steps(p) * CPU_STEP_S
                                    for p in work.parts)
    on_gpu = CASE_OVERHEAD_S + sum(gpu.seconds(p) for p in work.parts)
    why = []
    if budget_s is not None and seconds > budget_s:
        why.append(f"time {fmt_seconds(seconds)} > budget {fmt_seconds(budget_s)}")
    if memory_limit is not None and work.memory > memory_limit:
        why.append(f"memory {work.memory / GIB:.1f} GiB > {memory_limit / GIB:.1f} GiB")
    return Estimate(**common, flop=work.flop, seconds=seconds, gpu_seconds=on_gpu,
                    memory=work.memory, fits=not why, why_not="; ".join(why),
                    parts=tuple({**asdict(p), "seconds": p.flop / rates.of(p.kind),
                                 "gpu_seconds": gpu.seconds(p)} for p in work.parts),
                    notes=work.notes)


def _cpu_steps(part: Part) -> int:
    """Steps whose per-step overhead counts on the CPU: a solver's iterations (training steps
    are long enough on a CPU for their FLOP to dominate)."""
    return part.steps if part.kind in ("float64", "float32") else 0


def make_plan(scale: str = "full", keyword: str | None = None, *, budget_s: float | None = None,
              memory_limit: int | None = None, rates: Rates | None = None,
              claims: str = "claims", rootdir: str | Path | None = None,
              gpu: GpuModel = GPU) -> Plan:
    """Collect the selected cases, calibrate (unless ``rates`` is given), estimate each case."""
    cases = collect(scale, keyword, claims, rootdir)
    rates = rates or calibrate()
    found = tuple(estimate_case(ref, module, rates, budget_s=budget_s, memory_limit=memory_limit,
                                gpu=gpu) for ref, module in cases)
    return Plan(scale=scale, rates=rates, budget_s=budget_s, memory_limit=memory_limit,
                gpu=gpu, cases=found)


# ----------------------------------------------------------------------------- parsing, output

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_BYTES = {"b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1.5h`` -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", str(text).lower())
    if not match or match.group(2) not in ("", *_UNITS):
        raise ConfigError(f"--budget {text!r}: use a number with s, m, h or d (e.g. 2h, 90m)")
    return float(match.group(1)) * _UNITS.get(match.group(2) or "s", 1)


def parse_bytes(text: str) -> int:
    """``20GiB``, ``6G``, ``512MiB`` -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", str(text).lower())
    if not match or match.group(2) not in ("", *_BYTES):
        raise ConfigError(f"--memory {text!r}: use a number with GiB, GB, MiB, ... (e.g. 20GiB)")
    return int(float(match.group(1)) * _BYTES.get(match.group(2) or "b", 1))


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def fmt_flop(flop: float | None) -> str:
    return "?" if flop is None else f"{flop:.2e}"


def table(plan: Plan) -> str:
    """The plan as a fixed-width table for people, cheapest first, then the totals."""
    r = plan.rates
    lines = [f"genbench plan: {len(plan.cases)} case(s) at scale {plan.scale}; rates measured here "
             f"({r.threads} threads, {r.seconds:.1f} s): matmul float64 {r.float64 / 1e9:.1f}, "
             f"float32 {r.float32 / 1e9:.1f}, MLP step {r.mlp / 1e9:.1f}, conv step "
             f"{r.conv / 1e9:.1f} GFLOP/s",
             f"GPU column: {plan.gpu.name}: {plan.gpu.step_s['conv'] * 1e3:.1f} ms per "
             f"training step + FLOP at conv {plan.gpu.rate['conv'] / 1e12:.1f}, MLP "
             f"{plan.gpu.rate['mlp'] / 1e12:.1f}, solvers "
             f"{plan.gpu.rate['float64'] / 1e12:.1f} TFLOP/s; per-case overhead "
             f"{CASE_OVERHEAD_S:.0f} s on both", ""]
    header = f"{'case':<58} {'FLOP':>9} {'here':>9} {'1 GPU':>9} {'memory':>9}  fits"
    lines += [header, "-" * len(header)]
    order = sorted(plan.cases, key=lambda e: (e.seconds is None, e.seconds or 0))
    for e in order:
        name = f"{e.claim}[{e.case}]" if e.case else e.claim
        mem = "?" if e.memory is None else f"{e.memory / GIB:.1f} GiB"
        fits = "yes" if e.fits else f"no: {e.why_not}"
        lines.append(f"{name[:58]:<58} {fmt_flop(e.flop):>9} {fmt_seconds(e.seconds):>9} "
                     f"{fmt_seconds(e.gpu_seconds):>9} {mem:>9}  {fits}")
    known = [e for e in plan.cases if e.seconds is not None]
    fitting = [e for e in known if e.fits]
    lines += ["", f"total: {fmt_seconds(sum(e.seconds for e in known))} here "
                  f"({sum(e.seconds for e in known) / 3600:.2f} CPU-hours), "
                  f"{sum(e.gpu_seconds or 0 for e in known) / 3600:.2f} GPU-hours on one GPU; "
                  f"{len(fitting)} of {len(plan.cases)} cases fit "
                  f"({fmt_seconds(sum(e.seconds for e in fitting))})"]
    notes = sorted({n for e in plan.cases for n in e.notes})
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def plan_main(scale: str = "full", keyword: str | None = None, budget: str | None = None,
              memory: str | None = None, as_json: bool = False,
              measured: str | None = None) -> int:
    """``genbench plan``: print the table (or the JSON), exit 0; with ``measured`` (a campaign's
    ledger), print how far the estimates were from what that campaign measured instead."""
    if measured:
        from genbench.campaign import accuracy_table

        print(accuracy_table(measured))
        return 0
    plan = make_plan(scale, keyword, budget_s=parse_duration(budget) if budget else None,
                     memory_limit=parse_bytes(memory) if memory else None)
    print(plan.to_json() if as_json else table(plan))
    return 0
