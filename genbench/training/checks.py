"""Input checks of ``fit``/``fit_many``, run once at their entry, before the first step.

A careless input should fail in the first second with its cause named, not as a shape error
from deep inside a layer, a CUDA assert twenty minutes in, or (worse) a number: labels
truncated from floats, an accuracy averaged over NaN logits, K "seeds" of which one is a
different network. Each check raises a ConfigError that names the dataset, model or field
and what differs:

- an empty training or test set;
- images that are not floating point, or test images that hold NaN/inf (they would be
  averaged into an accuracy; in the training set the engine's NonFiniteLossError names the
  epoch and step where the loss went non-finite);
- labels that are not integers (float or bool labels would be truncated silently), or lie
  outside the model's classes (its output width, found by one forward pass of one image);
- train and test images of different shapes, or a shape the model does not accept;
- ``fit_many`` over models that are not one architecture (class, parameter names, shapes);
- seeds outside [0, 2**63).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn

from genbench.errors import ConfigError

SEED_LIMIT = 2 ** 63
# Per-module hook tables that a forward pass runs; emptied while probing the output width.
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
               "_forward_hooks_always_called")


def check_inputs(models: Sequence[nn.Module], train: Any, test: Any = None, *,
                 labels: torch.Tensor | None = None, seeds: Sequence[int] = (),
                 where: str = "fit") -> None:
    """Raise a ConfigError for the first careless input (see the module docstring).

    ``labels``: (N,) for ``fit`` or (K, N) for ``fit_many`` (overriding the dataset's).
    Streamed datasets (``stream_dataset``) are checked for emptiness only: their images are
    not resident.
    """
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
            raise ConfigError(f"{where}: seeds[{i}]={seed!r}; a seed must be an int in "
                              f"[0, 2**63)")
    _same_architecture(models, where)
    train_arrays = _arrays(train)
    test_arrays = None if test is None else _arrays(test)
    for what, ds, arrays in (("training", train, train_arrays), ("test", test, test_arrays)):
        if ds is None:
            continue
        size = len(arrays[1]) if arrays is not None else _len(ds)
        if size == 0:
            raise ConfigError(f"{where}: the {what} set {_name(ds)} is empty (0 images); give "
                              f"it at least one image")
        if arrays is not None:
            _check_images(arrays[0], ds, what, where)
            _check_label_dtype(arrays[1], f"the {what} set {_name(ds)}'s labels", where)
    if train_arrays is not None and test_arrays is not None:
        if tuple(train_arrays[0].shape[1:]) != tuple(test_arrays[0].shape[1:]):
            raise ConfigError(f"{where}: training images are {tuple(train_arrays[0].shape[1:])} "
                              f"but test images are {tuple(test_arrays[0].shape[1:])}; both sets "
                              f"must have one image shape (preprocess them alike)")
    if labels is not None:
        _check_label_dtype(torch.as_tensor(labels), "labels", where)
    if train_arrays is None:
        return
    classes = _output_width(models[0], train_arrays[0], train, where)
    checks = [(f"the training set {_name(train)}'s labels", train_arrays[1])]
    if test_arrays is not None:
        checks.append((f"the test set {_name(test)}'s labels", test_arrays[1]))
    if labels is not None:
        checks = checks[1:] + [("labels", torch.as_tensor(labels))]
    for what, y in checks:
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise ConfigError(f"{where}: {what} hold values in [{int(y.min())}, {int(y.max())}] "
                              f"but the model {type(models[0]).__name__} has {classes} outputs "
                              f"(classes 0..{classes - 1}); build the model for the dataset's "
                              f"number of classes")


def _arrays(ds: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    if isinstance(ds, torch.utils.data.TensorDataset) and len(ds.tensors) == 2:
        return ds.tensors[0], ds.tensors[1]
    if isinstance(getattr(ds, "x", None), torch.Tensor) and isinstance(getattr(ds, "y", None),
                                                                       torch.Tensor):
        return ds.x, ds.y
    return None  # a streamed dataset, or something the engine itself will refuse by name


def _len(ds: Any) -> int | None:
    with contextlib.suppress(TypeError):
        return len(ds)
    return None


def _name(ds: Any) -> str:
    return repr(getattr(ds, "name", type(ds).__name__))


def _check_images(x: torch.Tensor, ds: Any, what: str, where: str) -> None:
    if not torch.is_floating_point(x):
        raise ConfigError(f"{where}: the {what} images of {_name(ds)} are {x.dtype}; "
                          f"preprocess them to float first (genbench.data.preprocess)")
    if what != "test":  # NaN in training images: the engine's NonFiniteLossError names the step
        return
    finite = torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
    if not bool(finite.all()):
        bad = (~finite).nonzero().flatten()
        raise ConfigError(f"{where}: {len(bad):,} {what} images of {_name(ds)} hold NaN or inf "
                          f"pixels (the first at index {int(bad[0])}); they would be averaged "
                          f"into the test accuracy. Fix the preprocessing or drop those images.")


def _check_label_dtype(y: torch.Tensor, what: str, where: str) -> None:
    if y.dtype == torch.bool or torch.is_floating_point(y) or torch.is_complex(y):
        raise ConfigError(f"{where}: {what} are {y.dtype}; labels must be integer class "
                          f"indices (a float label would be truncated silently). Pass "
                          f"y.long() if they are whole numbers")


def _same_architecture(models: Sequence[nn.Module], where: str) -> None:
    if len(models) < 2:
        return
    first = _signature(models[0])
    for i, model in enumerate(models[1:], 1):
        if type(model) is not type(models[0]):
            raise ConfigError(f"{where}: model {i} is a {type(model).__name__} but model 0 is a "
                              f"{type(models[0]).__name__}; fit_many trains K models of one "
                              f"architecture (call it once per architecture)")
        other = _signature(model)
        if other != first:
            names = dict(first)
            for name, shape in other:
                if name not in names:
                    detail = f"it has {name!r}, which model 0 lacks"
                    break
                if names[name] != shape:
                    detail = f"{name!r} has shape {shape} in it, {names[name]} in model 0"
                    break
            else:
                missing = [n for n, _ in first if n not in dict(other)]
                detail = f"it lacks {missing[0]!r}" if missing else "the order differs"
            raise ConfigError(f"{where}: model {i} is not the architecture of model 0: {detail}; "
                              f"fit_many trains K models of one architecture")


def _signature(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return ([(n, tuple(p.shape)) for n, p in model.named_parameters()]
            + [(n, tuple(b.shape)) for n, b in model.named_buffers()])


def _output_width(model: nn.Module, x: torch.Tensor, ds: Any, where: str) -> int:
    """The number of classes the model predicts: its output width on one image.

    First on the ``meta`` device (shapes only, no arithmetic: 0.2 s for small Inception where
    a real forward of one image took 1.2-2.7 s on the loaded 2-core CPU); if a layer cannot run
    there, one real forward in eval mode without gradients. Neither touches a random generator,
    a weight or a training flag, nor runs the caller's forward/backward hooks."""
    modes = [(m, m.training) for m in model.modules()]
    hooks = [(m, name, getattr(m, name)) for m in model.modules() for name in _HOOK_DICTS
             if isinstance(getattr(m, name, None), dict)]
    try:
        model.eval()
        for module, name, _ in hooks:  # the caller's hooks must not see the probe
            setattr(module, name, OrderedDict())
        try:
            return _width(_meta_forward(model, x[:1]), model, where)
        except ConfigError:
            raise
        except Exception:  # noqa: BLE001 (a layer without meta support, or a real mismatch)
            pass
        param = next(model.parameters(), None)
        device = param.device if param is not None else x.device
        devices = [device.index or 0] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                out = model(x[:1].to(device=device, dtype=torch.float32))
        except Exception as err:  # noqa: BLE001 (any failure here is input the model refuses)
            first = str(err).splitlines()[0] if str(err) else ""
            raise ConfigError(f"{where}: the model {type(model).__name__} does not accept images "
                              f"of shape {tuple(x.shape[1:])} from {_name(ds)} "
                              f"({type(err).__name__}: {first}); build it for that input "
                              f"shape") from err
        return _width(out, model, where)
    finally:
        for module, mode in modes:
            module.training = mode
        for module, name, hook_dict in hooks:
            setattr(module, name, hook_dict)


def _meta_forward(model: nn.Module, sample: torch.Tensor) -> Any:
    state = {name: t.to("meta") for name, t in (*model.named_parameters(),
                                                 *model.named_buffers())}
    with torch.no_grad():
        return torch.func.functional_call(model, state, (sample.to("meta", torch.float32),))


def _width(out: Any, model: nn.Module, where: str) -> int:
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        raise ConfigError(f"{where}: the model {type(model).__name__} returns "
                          f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
                          f" for one image; it must return logits of shape (N, classes)")
    return int(out.shape[1])
