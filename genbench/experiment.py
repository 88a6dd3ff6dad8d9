"""Experiments: the one way a claim, a benchmark or a user's study gets data and trained runs.

An experiment is three frozen specs: which data (``DataSpec``: dataset, fixture or full data,
subset size, preprocessing), which corruption (``Corruption``: Zhang's randomizations or
none), and which runs (model, ``TrainConfig``, seeds). ``prepare`` turns the first two into
device-resident, preprocessed train/test sets; ``train_runs`` trains the runs with
``fit_many`` (K seeds side by side) through the run cache, so claims that share a run (Zhang's
Table 1 and Figure 1c, say) train it once per pytest session, or once ever with a disk cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from genbench import models
from genbench.data import ArrayDataset, load, load_fixture
from genbench.data import corruptions, preprocess
from genbench.data.fixtures import balanced_indices, fixture_key, read_manifest
from genbench.data.sources import SOURCES
from genbench.errors import ConfigError, GenbenchError
from genbench.training import RunResult, TrainConfig, fit_many
from genbench.validate import check_field_types

Source = Literal["fixture", "full"]
PREPROCESSING: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "zhang": preprocess.zhang,
    "unit": preprocess.unit,
}
CORRUPTIONS = ("none", "random_labels", "shuffled_pixels", "random_pixels", "gaussian_pixels")


@dataclass(frozen=True)
class DataSpec:
    """Which images: ``dataset`` from the committed ``fixture`` subsets or the ``full`` data
    (``load``, root from $GENBENCH_DATA), optionally a class-balanced subset of ``n_train`` /
    ``n_test`` images drawn with ``subset_seed``, preprocessed by ``preprocess``."""

    dataset: str
    source: Source = "fixture"
    n_train: int | None = None
    n_test: int | None = None
    preprocess: str = "unit"
    subset_seed: int = 0

    def __post_init__(self) -> None:
        if self.source not in ("fixture", "full"):  # before the types: the clearer message
            raise ConfigError(f"DataSpec.source={self.source!r}; allowed: fixture, full")
        check_field_types(self)
        if self.dataset not in SOURCES:
            raise ConfigError(f"DataSpec.dataset={self.dataset!r}; allowed: {sorted(SOURCES)}")
        if self.preprocess not in PREPROCESSING:
            raise ConfigError(f"DataSpec.preprocess={self.preprocess!r}; allowed: "
                              f"{sorted(PREPROCESSING)}")
        if self.subset_seed < 0:
            raise ConfigError(f"DataSpec.subset_seed={self.subset_seed}; must be an int >= 0")
        for name, split in (("n_train", "train"), ("n_test", "test")):
            value = getattr(self, name)
            if value is None:
                continue
            if value < 1:
                raise ConfigError(f"DataSpec.{name}={value}; must be a positive int or None")
            available, what = _available(self.dataset, self.source, split)
            if available is not None and value > available:
                raise ConfigError(f"DataSpec.{name}={value:,} is more than the {available:,} "
                                  f"images of {what}; use at most {available:,} (or None for "
                                  f"all of them)")


@dataclass(frozen=True)
class Corruption:
    """Zhang et al.'s randomization tests (Section 2): ``random_labels`` with probability
    ``p`` (train labels only: test labels stay true), or ``shuffled_pixels`` (one permutation
    shared by train and test), ``random_pixels`` or ``gaussian_pixels`` (train and test)."""

    kind: str = "none"
    p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.kind not in CORRUPTIONS:
            raise ConfigError(f"Corruption.kind={self.kind!r}; allowed: {CORRUPTIONS}")
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"Corruption.p={self.p}; must be in [0, 1]")
        if self.seed < 0:
            raise ConfigError(f"Corruption.seed={self.seed}; must be an int >= 0")


def _available(dataset: str, source: str, split: str) -> tuple[int | None, str]:
    """How many images a spec can draw from: the committed fixture's size, or the published
    split's (a known-partial split loads fewer, and says so in its size note)."""
    if source == "fixture":
        try:
            entry = read_manifest()["fixtures"].get(fixture_key(dataset, split))
        except GenbenchError:  # no manifest: loading will say so, with the fix
            return None, ""
        if entry is None:
            return None, ""
        return int(entry["n"]), f"the {dataset} {split} fixture"
    return SOURCES[dataset].sizes[split], f"the published {dataset} {split} split"


@functools.lru_cache(maxsize=16)
def _raw_split(dataset: str, source: Source, split: str) -> ArrayDataset:
    return load_fixture(dataset, split) if source == "fixture" else load(dataset, split)


def _subset(ds: ArrayDataset, n: int | None, seed: int) -> ArrayDataset:
    if n is not None and n > len(ds) and not ds.partial:
        raise ConfigError(f"DataSpec: {n:,} images asked of {ds.name}, which holds "
                          f"{len(ds):,}; use at most {len(ds):,} (or None for all)")
    if n is None or n >= len(ds):  # a known-partial split gives what it has (its size note says)
        return ds
    if n % ds.num_classes:
        raise ConfigError(f"DataSpec: a class-balanced subset of {ds.name} needs a multiple of "
                          f"{ds.num_classes} images, got {n}")
    return ds.subset(balanced_indices(ds.y, n // ds.num_classes, seed))


def raw_splits(spec: DataSpec) -> tuple[ArrayDataset, ArrayDataset]:
    """The (uint8) train and test subsets the spec names, before corruption/preprocessing."""
    train = _subset(_raw_split(spec.dataset, spec.source, "train"), spec.n_train, spec.subset_seed)
    test = _subset(_raw_split(spec.dataset, spec.source, "test"), spec.n_test, spec.subset_seed)
    return train, test


def corrupt(train: ArrayDataset, test: ArrayDataset,
            corruption: Corruption) -> tuple[ArrayDataset, ArrayDataset]:
    """Apply a corruption to raw (unpreprocessed) splits."""
    kind, seed = corruption.kind, corruption.seed
    if kind == "random_labels":
        return corruptions.random_labels(train, corruption.p, seed), test
    if kind == "shuffled_pixels":  # same seed -> same permutation for train and test
        return corruptions.shuffled_pixels(train, seed), corruptions.shuffled_pixels(test, seed)
    if kind == "random_pixels":
        return corruptions.random_pixels(train, seed), corruptions.random_pixels(test, seed + 1)
    if kind == "gaussian_pixels":
        return corruptions.gaussian_pixels(train, seed), corruptions.gaussian_pixels(test, seed + 1)
    return train, test


def prepare(spec: DataSpec, corruption: Corruption = Corruption(),
            device: torch.device | str = "cpu") -> tuple[ArrayDataset, ArrayDataset]:
    """Train and test sets as the paper feeds them: subset, corrupted, moved to ``device``
    once, and preprocessed there (float32)."""
    train, test = corrupt(*raw_splits(spec), corruption)
    fn = PREPROCESSING[spec.preprocess]
    train, test = train.to(device), test.to(device)
    return train.with_x(fn(train.x)), test.with_x(fn(test.x))


@dataclass(frozen=True)
class Runs:
    """K runs of one model: ``seeds`` fix the initial weights (``models.build(seed=...)``)
    and each run's data order; ``options`` are the model's own (e.g. dropout rates)."""

    model: str
    config: TrainConfig
    seeds: tuple[int, ...] = (0,)
    init: str = "default"
    options: tuple[tuple[str, Any], ...] = field(default=())


class RunCacheWarning(UserWarning):
    """The disk run cache could not be used as asked (a bad file discarded, or an unwritable
    folder): the run is trained (again) and returned, only the caching is lost."""


CODE_PACKAGES = ("models", "training", "data")  # the code that produces a run, hashed in keys


@functools.lru_cache(maxsize=8)
def code_hash(root: Path | None = None) -> str:
    """sha256 of the source that produces a run: ``genbench/{models,training,data}/*.py`` and
    this module, by relative path and content. Part of every run-cache key, so an edited model,
    loop or loader never returns a run trained by the old code."""
    base = Path(root) if root is not None else Path(__file__).resolve().parent
    files = sorted(f for pkg in CODE_PACKAGES for f in (base / pkg).rglob("*.py"))
    files.append(base / "experiment.py")
    digest = hashlib.sha256(b"genbench-code-v1\n")
    for path in files:
        if path.is_file():
            digest.update(f"{path.relative_to(base).as_posix()}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def device_kind(device: torch.device) -> str:
    """What a run's numbers depend on besides the code: "cpu (x86_64)" or the GPU's name."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.machine()})"


def environment_parts(device: torch.device, config: TrainConfig) -> dict[str, Any]:
    """The key parts a run depends on outside its own specs: code, versions, device kind, the
    precision actually used ("auto" resolved as the engine resolves it) and, on the CPU, the
    thread count (it changes the order of reductions, so the last bits of every number)."""
    import torchvision

    bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    parts = {"code": code_hash(), "torch": torch.__version__,
             "torchvision": torchvision.__version__, "device_kind": device_kind(device),
             "precision": "bf16" if bf16 else "fp32"}
    if device.type == "cpu":
        parts["threads"] = torch.get_num_threads()
    return parts


class RunCache:
    """Trained runs by a hash of everything that determines them: the data's content
    fingerprints, the corruption, model, options, config, seeds, the code that trains them,
    the torch/torchvision versions, the device kind and the precision. In memory for the
    process (a pytest session) and, if ``directory`` is set ($GENBENCH_RUN_CACHE), on disk.

    On disk each key is one file: a header line naming the key, then one RunResult JSON per
    run. Writers write a unique temporary file and rename it into place (atomic), so any
    number of processes filling the same keys lose nothing and never read half a file. A file
    that is empty, short, corrupt or from another key is reported by path
    (:class:`RunCacheWarning`), discarded and retrained. An unwritable folder is found before
    training (a warning) and the result is still returned.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self._memory: dict[str, list[RunResult]] = {}
        self._writable: bool | None = None

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, key: str) -> Path | None:
        return self.directory / f"{key}.jsonl" if self.directory else None

    def get_or_train(self, parts: dict[str, Any], train: Callable[[], list[RunResult]],
                     expected: int | None = None) -> list[RunResult]:
        """The cached runs for ``parts``, else ``train()``'s (then cached). ``expected`` is
        the number of runs a complete entry holds (one per seed)."""
        key = self.key(parts)
        if key in self._memory:
            return self._memory[key]
        path = self.path(key)
        results = self._read(path, key, expected) if path is not None else None
        if results is None:
            writable = path is not None and self.check_writable()
            results = train()
            if writable:
                self._write(path, key, results)
        self._memory[key] = results
        return results

    def check_writable(self) -> bool:
        """Whether the folder can take cache files (tested once, by writing one); warns if not."""
        if self._writable is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd, probe = tempfile.mkstemp(dir=self.directory, prefix=".probe-")
                os.close(fd)
                os.unlink(probe)
                self._writable = True
            except OSError as err:
                self._writable = False
                warnings.warn(f"run cache folder {self.directory} is not writable "
                              f"({err.strerror or err}): runs are trained and returned but not "
                              f"kept. Fix: make it writable, or set GENBENCH_RUN_CACHE to a "
                              f"writable folder (or unset it).", RunCacheWarning, stacklevel=3)
        return self._writable

    def _read(self, path: Path, key: str, expected: int | None) -> list[RunResult] | None:
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as err:
            return self._discard(path, f"cannot be read ({err})")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return self._discard(path, "is empty")
        try:
            header = json.loads(lines[0])
            if not isinstance(header, dict) or "genbench_run_cache" not in header:
                return self._discard(path, "has no run-cache header (old format or not a cache file)")
            if header.get("key") != key:
                return self._discard(path, f"holds the runs of another key ({header.get('key')!r})")
            results = [RunResult.from_json(line) for line in lines[1:]]
        except Exception as err:  # noqa: BLE001 (any damage: the run is trained again)
            return self._discard(path, f"is corrupt ({type(err).__name__}: {err})")
        count = header.get("runs")
        if (expected is not None and len(results) != expected) or len(results) != count:
            return self._discard(path, f"is short: {len(results)} runs where "
                                       f"{expected if expected is not None else count} belong")
        return results

    def _discard(self, path: Path, why: str) -> None:
        warnings.warn(f"run cache file {path} {why}; discarded, the runs are trained again",
                      RunCacheWarning, stacklevel=4)
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def _write(self, path: Path, key: str, results: list[RunResult]) -> None:
        header = json.dumps({"genbench_run_cache": 1, "key": key, "runs": len(results)})
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("\n".join([header, *(r.to_json() for r in results)]) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
        except OSError as err:
            warnings.warn(f"run cache file {path} could not be written ({err.strerror or err}); "
                          f"the runs are returned but not kept", RunCacheWarning, stacklevel=4)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


@functools.lru_cache(maxsize=1)
def default_cache() -> RunCache:
    return RunCache(os.environ.get("GENBENCH_RUN_CACHE") or None)


def train_runs(runs: Runs, train: ArrayDataset, test: ArrayDataset | None = None, *,
               corruption: Corruption | None = None, labels: torch.Tensor | None = None,
               cache: RunCache | None = None, device: torch.device | str | None = None
               ) -> list[RunResult]:
    """Train ``runs`` (K seeds side by side with ``fit_many``) on prepared data, through the
    run cache. ``labels`` (K, N) gives each run its own labels (a noise sweep in one launch).
    """
    dev = torch.device(device) if device is not None else train.device
    parts = {
        "train": train.fingerprint(), "test": None if test is None else test.fingerprint(),
        "corruption": asdict(corruption) if corruption else None,
        "labels": None if labels is None else hashlib.sha256(
            labels.cpu().numpy().tobytes()).hexdigest(),
        "model": runs.model, "options": dict(runs.options), "init": runs.init,
        "config": runs.config.to_dict(), "seeds": list(runs.seeds), "device": dev.type,
        **environment_parts(dev, runs.config),
    }

    def fresh() -> list[RunResult]:
        built = [models.build(runs.model, train.in_shape, train.num_classes, seed=s,
                              init=runs.init, **dict(runs.options)) for s in runs.seeds]
        return fit_many(built, train, runs.config, test, seeds=list(runs.seeds), labels=labels,
                        device=dev, name=runs.model)

    return (cache or default_cache()).get_or_train(parts, fresh, expected=len(runs.seeds))


def seeds(n: int, start: int = 0) -> tuple[int, ...]:
    """``n`` consecutive seeds: the seeds of a study are fixed in advance, never picked."""
    return tuple(range(start, start + n))
