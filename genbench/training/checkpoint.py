"""Checkpoint files: what a run was (identity) and where it stands (state), checksummed.

Why identity: a checkpoint resumed under a different config, dataset or architecture would
continue a different run and silently mix the two. The file carries the config, the data's
fingerprints, the seeds and the parameter names and shapes; resuming with any of them
different is an error that names the checkpoint and the field.

Why a checksum and ``weights_only``: a checkpoint cut short by a crash or altered on disk must
fail with the file named and the way to restart, not with an unpickling traceback; and
loading never runs code from the file (``torch.load(weights_only=True)``). Everything is
loaded onto the CPU and moved by the engine, so a checkpoint written on one device resumes on
another (a CUDA generator's ``set_state`` takes a CPU byte tensor only).

Layout: ``MAGIC``, the SHA-256 of the payload (64 hex characters), a newline, the payload
(``torch.save`` bytes of a dict of tensors, numbers, strings, lists and dicts).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from genbench.errors import ConfigError, GenbenchError

MAGIC = b"genbench-checkpoint-v1 "


class CheckpointError(GenbenchError):
    """A checkpoint file is truncated, altered or not a genbench checkpoint."""


def save(path: Path, identity: dict[str, Any], state: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write leaves the previous checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save({"identity": identity, "state": state}, buffer)
    payload = buffer.getvalue()
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    os.replace(tmp, path)


def load(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """The state saved in ``path``, after checking its checksum and that it was written by a
    run with this ``identity``; tensors on the CPU."""
    restart = f"delete {path} to restart the run from the beginning"
    blob = path.read_bytes()
    head = len(MAGIC) + 65
    if not blob.startswith(MAGIC) or len(blob) < head:
        raise CheckpointError(f"checkpoint {path} is not a genbench checkpoint (or is cut "
                              f"short); {restart}")
    digest, payload = blob[len(MAGIC):head - 1].decode("ascii", "replace"), blob[head:]
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {path} is truncated or altered (its checksum does "
                              f"not match its contents); {restart}")
    data = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    _same_identity(path, data["identity"], identity)
    return data["state"]


def _same_identity(path: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    for key in now:
        a, b = saved.get(key), now[key]
        if isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    _differs(path, f"{key}.{name}", a.get(name), b.get(name))
        elif a != b:
            _differs(path, key, a, b)


def _differs(path: Path, field: str, saved: Any, now: Any) -> None:
    raise ConfigError(f"checkpoint {path} belongs to a different run: {field} was {saved!r} "
                      f"there and is {now!r} now; pass another checkpoint path for this run, "
                      f"or delete {path} to start over")
