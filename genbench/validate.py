"""Type checks of frozen configuration dataclasses, from their own annotations.

Python does not enforce annotations, so ``TrainConfig(lr="0.1")``, ``hflip=1`` or
``seed=2**64`` would otherwise pass construction and fail (or silently mean something else)
deep inside a run. :func:`check_field_types` checks every field of a dataclass against its
annotation at construction, with the field named, so that a field added later is checked
without anyone remembering to. The rules are strict where Python is loose: a bool is not a
number, an int field must fit int64, a float field takes ints and floats but must be finite,
a ``Literal`` takes only its listed values. Ranges stay with each class (they are its meaning).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any, Literal, Union

from genbench.errors import ConfigError

INT64 = 2 ** 63


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_field_types(obj: Any, owner: str | None = None) -> None:
    """Raise a ConfigError naming the first field of dataclass ``obj`` whose value does not
    match its annotation (see the module docstring for the rules)."""
    owner = owner or type(obj).__name__
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        hint = hints.get(f.name, Any)
        if not matches(value, hint):
            hint_fix = ("; pass int() of it" if isinstance(value, numbers.Integral)
                        and not isinstance(value, (int, bool)) else "")
            raise ConfigError(f"{owner}.{f.name}={_short(value)} is not allowed: it must be "
                              f"{describe(hint)}, got {type(value).__name__}{hint_fix}")


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of type ``hint`` under the strict rules of this module."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(matches(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in typing.get_args(hint))
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # a Python int (numpy's float64 is a float, its int64 is not an int)
        return isinstance(value, int) and not isinstance(value, bool) and -INT64 <= value < INT64
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            return math.isfinite(float(value))
        except OverflowError:  # an int beyond float's range
            return False
    if hint is str:
        return isinstance(value, str)
    if origin is not None:  # tuple[...], dict[...]: the container type only
        return isinstance(value, origin)
    return isinstance(value, hint) if isinstance(hint, type) else True


def describe(hint: Any) -> str:
    """An annotation in words: "an int (int64)", "a finite number or None", "one of 'a', 'b'"."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in typing.get_args(hint))
    words = {bool: "True or False", int: "an int (within int64, not a bool)",
             float: "a finite number (not a bool)", str: "a string", type(None): "None"}
    if hint in words:
        return words[hint]
    name = getattr(origin or hint, "__name__", str(hint))
    return f"a {name}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
