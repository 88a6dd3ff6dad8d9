"""Claim records, tolerance checks, and the results ledger (JSON lines).

A *claim record* is what one run of one claim at one scale measured: every check with its
measured value, the paper's value and the tolerance, plus where and how it ran (device,
seconds, library versions, git commit, sizes, seeds) and the curves its figures need. Records
are appended to the *ledger*, ``results/ledger.jsonl`` by default, one JSON object per line;
``genbench report`` renders the latest record of each (claim, scale) and ``genbench compare``
gates a new ledger against a baseline.

Why JSON lines with ``flock``-ed ``O_APPEND`` writes rather than write-temp-and-rename: many
writers (pytest-xdist workers, several pytest processes) append to one file at once, and a
rename of a whole rewritten file would lose the other writers' records. One ``os.write`` of a
complete line under an exclusive lock cannot interleave with another writer's line; a process
killed mid-write can leave at most one torn last line, which :func:`read_ledger` skips with a
:class:`LedgerWarning` (and the next append starts on a fresh line).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from genbench.errors import ConfigError, GenbenchError

SCHEMA_VERSION = 1
VERDICTS = ("pass", "fail", "error")
SCALES = ("smoke", "full")
FIGURE_KINDS = ("line", "hist", "scatter")

Scalar = float | int | bool | str | None


class LedgerWarning(UserWarning):
    """A ledger line could not be read (typically the torn last line of a killed run)."""


def _scalar(value: Any) -> Scalar:
    """A JSON-ready Python scalar from a number, a bool, a numpy or a one-element torch value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # numpy scalars and arrays, torch tensors of one element
        return value.item()
    raise ConfigError(f"a measured value must be a number, bool or string, got {type(value).__name__}: "
                      f"{value!r}; pass float(x) or record arrays with claim.note()")


def _is_number(value: Scalar) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Check:
    """One comparison of a measured value against a bound, as it was decided.

    ``lo``/``hi`` are the accepted interval in numbers (``None`` = unbounded side) and
    ``bound`` says the same in words. ``tol`` is how far the measured value may move between
    two runs before ``genbench compare`` flags it (``None``: only pass/fail and, for
    non-numbers, equality are compared).
    """

    name: str
    kind: str
    measured: Scalar
    passed: bool
    bound: str
    paper: Scalar = None
    lo: float | None = None
    hi: float | None = None
    tol: float | None = None

    def describe(self) -> str:
        """``name: measured 0.93 (paper 0.9934), needs >= 0.99``: the line of a failure message."""
        paper = "" if self.paper is None else f" (paper {fmt(self.paper)})"
        return f"{self.name}: measured {fmt(self.measured)}{paper}, needs {self.bound}"


def fmt(value: Scalar) -> str:
    """A short, exact-enough rendering of a measured or paper value."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _numeric_check(name: str, kind: str, measured: Any, lo: float | None, hi: float | None,
                   bound: str, paper: Any, tol: float | None) -> Check:
    value = _scalar(measured)
    if not _is_number(value):
        raise ConfigError(f"check {name!r}: measured must be a number, got {value!r}")
    passed = not math.isnan(value) and (lo is None or value >= lo) and (hi is None or value <= hi)
    return Check(name=name, kind=kind, measured=value, passed=passed, bound=bound,
                 paper=_scalar(paper), lo=lo, hi=hi, tol=None if tol is None else float(tol))


def _default_tol(paper: Any, bound: float, tol: float | None) -> float | None:
    """One-sided checks: the slack the claim grants between the paper's value and the bound."""
    if tol is not None or paper is None:
        return tol
    return abs(float(_scalar(paper)) - bound)


def at_least(name: str, measured: Any, bound: float, *, paper: Any = None,
             tol: float | None = None) -> Check:
    """Passes when ``measured >= bound``."""
    return _numeric_check(name, "at_least", measured, float(bound), None, f">= {fmt(float(bound))}",
                          paper, _default_tol(paper, float(bound), tol))


def at_most(name: str, measured: Any, bound: float, *, paper: Any = None,
            tol: float | None = None) -> Check:
    """Passes when ``measured <= bound``."""
    return _numeric_check(name, "at_most", measured, None, float(bound), f"<= {fmt(float(bound))}",
                          paper, _default_tol(paper, float(bound), tol))


def within(name: str, measured: Any, target: float, *, abs_tol: float | None = None,
           rel_tol: float | None = None, paper: Any = None, tol: float | None = None) -> Check:
    """Passes when ``|measured - target| <= max(abs_tol, rel_tol * |target|)``.

    ``paper`` defaults to ``target`` (the usual case: the target *is* the paper's number).
    """
    if abs_tol is None and rel_tol is None:
        raise ConfigError(f"check {name!r}: within() needs abs_tol or rel_tol")
    for field_name, value in (("abs_tol", abs_tol), ("rel_tol", rel_tol)):
        if value is not None and not value >= 0:
            raise ConfigError(f"check {name!r}: {field_name} must be >= 0, got {value!r}")
    target = float(target)
    width = max(abs_tol or 0.0, (rel_tol or 0.0) * abs(target))
    words = " or ".join(w for w in (abs_tol is not None and f"±{fmt(float(abs_tol))}",
                                    rel_tol is not None and f"±{fmt(100 * float(rel_tol))}%") if w)
    return _numeric_check(name, "within", measured, target - width, target + width,
                          f"{fmt(target)} {words}",
                          target if paper is None else paper, width if tol is None else tol)


def in_interval(name: str, measured: Any, lo: float, hi: float, *, paper: Any = None,
                tol: float | None = None) -> Check:
    """Passes when ``lo <= measured <= hi`` (e.g. a binomial confidence interval around chance)."""
    lo, hi = float(lo), float(hi)
    if not lo <= hi:
        raise ConfigError(f"check {name!r}: in_interval needs lo <= hi, got lo={lo}, hi={hi}")
    return _numeric_check(name, "in_interval", measured, lo, hi, f"in [{fmt(lo)}, {fmt(hi)}]",
                          paper, (hi - lo) / 2 if tol is None else tol)


def holds(name: str, condition: Any, *, measured: Any = None, expected: Any = None,
          paper: Any = None) -> Check:
    """Passes when ``condition`` is true; ``measured``/``expected`` say what was compared."""
    bound = "true" if expected is None else f"{fmt(_scalar(expected))}"
    return Check(name=name, kind="holds", measured=_scalar(measured if measured is not None else bool(condition)),
                 passed=bool(condition), bound=bound, paper=_scalar(paper))


def figure_spec(key: str, title: str, kind: str, xlabel: str, ylabel: str,
                series: Mapping[str, Mapping[str, Any]], *, logx: bool = False,
                logy: bool = False, references: Mapping[str, float] | None = None
                ) -> dict[str, Any]:
    """A validated, JSON-ready figure: what the report needs to re-draw a paper's figure.

    ``series`` maps a legend label to ``{"x": [...], "y": [...]}`` (line, scatter) or to
    ``{"values": [...]}`` (hist); arrays and tensors are turned into lists of floats.
    ``references`` maps a label to a value drawn as a dashed reference line (horizontal; on a
    histogram, vertical): the paper's value, the chance level, e.g.
    ``{"paper (Table 1)": 0.1061, "chance": 0.1}``.
    """
    if kind not in FIGURE_KINDS:
        raise ConfigError(f"figure {key!r}: kind must be one of {FIGURE_KINDS}, got {kind!r}")
    if not series:
        raise ConfigError(f"figure {key!r}: series is empty; give at least one {{label: data}}")
    wanted = ("values",) if kind == "hist" else ("x", "y")
    clean: dict[str, dict[str, list[float]]] = {}
    for label, data in series.items():
        if set(data) != set(wanted):
            raise ConfigError(f"figure {key!r}, series {label!r}: a {kind} series has keys {wanted}, "
                              f"got {tuple(data)}")
        clean[str(label)] = {k: [float(v) for v in _as_list(data[k])] for k in wanted}
        if kind != "hist" and len(clean[str(label)]["x"]) != len(clean[str(label)]["y"]):
            raise ConfigError(f"figure {key!r}, series {label!r}: x and y differ in length")
    refs = {str(label): float(_scalar(value)) for label, value in (references or {}).items()}
    return {"key": key, "title": title, "kind": kind, "xlabel": xlabel, "ylabel": ylabel,
            "series": clean, "logx": bool(logx), "logy": bool(logy),
            **({"references": refs} if refs else {})}


def _as_list(values: Any) -> list[Any]:
    if hasattr(values, "tolist"):
        values = values.tolist()
    return list(values)


@dataclass(frozen=True)
class ClaimRecord:
    """What one run of one claim at one scale measured and decided (one ledger line)."""

    id: str
    source: str
    statement: str
    scale: str
    verdict: str
    checks: tuple[Check, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)
    seeds: tuple[Any, ...] = ()
    device: str = ""
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    timestamp: str = ""
    figures: tuple[dict[str, Any], ...] = ()
    node_id: str = ""
    error: str | None = None
    xfail: str | None = None
    # The claim's case (its parametrize id without the scale, e.g. a Table 1 row "mlp_1x512");
    # None for a claim with one case, and in records written before cases existed.
    case: str | None = None
    paper: str | None = None  # the paper's numbers as the claim mark states them (text)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError(f"ClaimRecord.verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.scale not in SCALES:
            raise ConfigError(f"ClaimRecord.scale must be one of {SCALES}, got {self.scale!r}")

    @property
    def key(self) -> tuple[str, str | None, str]:
        """(claim id, case, scale): the unit the report and the gate compare."""
        return self.id, self.case, self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClaimRecord:
        """Inverse of :meth:`to_dict`; unknown keys (from a newer schema) are ignored."""
        check_record_fields(data)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        check_names = {f.name for f in dataclasses.fields(Check)}
        values["checks"] = tuple(Check(**{k: v for k, v in c.items() if k in check_names})
                                 for c in values.get("checks", ()))
        values["seeds"] = tuple(values.get("seeds", ()))
        values["figures"] = tuple(values.get("figures", ()))
        return cls(**values)

    def to_json(self) -> str:
        """One line of JSON (no newline inside, whatever the notes hold)."""
        return json.dumps(self.to_dict(), default=str)  # keeps the legend order of series

    @classmethod
    def from_json(cls, line: str) -> ClaimRecord:
        return cls.from_dict(json.loads(line))


def default_ledger_path(rootdir: str | os.PathLike[str] | None = None) -> Path:
    """``$GENBENCH_LEDGER`` if set, else ``results/ledger.jsonl`` under ``rootdir`` (or cwd)."""
    env = os.environ.get("GENBENCH_LEDGER")
    if env:
        return Path(env)
    return Path(rootdir if rootdir is not None else Path.cwd()) / "results" / "ledger.jsonl"


class Ledger:
    """An append-only JSON-lines file of :class:`ClaimRecord`; safe under parallel writers."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float | None = None) -> None:
        self.path = Path(path)
        # An append holds the lock for milliseconds; waiting minutes means a stuck holder.
        self.lock_timeout = float(os.environ.get("GENBENCH_LEDGER_LOCK_TIMEOUT", 120)
                                  if lock_timeout is None else lock_timeout)

    def append(self, record: ClaimRecord) -> None:
        """Append one record atomically: one ``os.write`` of the whole line under ``flock``.

        The lock is waited for at most ``lock_timeout`` seconds; then a LedgerError names the
        process that holds it (from /proc/locks), instead of hanging the run.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (record.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _lock(fd, self.path, self.lock_timeout)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a killed writer left a torn line: do not glue onto it
            written = os.write(fd, line)
            while written < len(line):  # regular files write fully; loop only for safety
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> list[ClaimRecord]:
        return read_ledger(self.path)


def _lock(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LedgerError(
                    f"ledger {display(path)} stayed locked for {timeout:g} s by "
                    f"{lock_holder(fd)}; an append takes milliseconds, so that process is stuck "
                    f"or holds the lock on purpose. Fix: let it finish or end it, or write to "
                    f"another ledger (--ledger); GENBENCH_LEDGER_LOCK_TIMEOUT sets the wait."
                ) from None
            time.sleep(0.05)


def lock_holder(fd: int) -> str:
    """Who holds the flock on the file behind ``fd``: "process PID (command)", from Linux's
    /proc/locks; "another process" where that cannot be read."""
    st = os.fstat(fd)
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        table = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for row in table:
        parts = row.split()
        if len(parts) < 6 or parts[1] != "FLOCK":  # "->" rows are waiters, not holders
            continue
        try:
            major, minor, inode = parts[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) != want:
                continue
        except ValueError:
            continue
        pid = parts[4]
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:
            command = ""
        if pid == str(os.getpid()):
            return f"this very process (pid {pid})"
        return f"process {pid}" + (f" ({command[:120]})" if command else "")
    return "another process"


def read_ledger(path: str | os.PathLike[str]) -> list[ClaimRecord]:
    """All readable records, in append order; unreadable lines are skipped with a warning.

    This is the forgiving reader of the report (it draws what it can). The gate reads its
    baseline with :func:`read_ledger_strict`.
    """
    path = Path(path)
    records = []
    for number, line in _lines(path):
        try:
            records.append(parse_line(line))
        except LedgerLineError as err:
            warnings.warn(f"{path}:{number}: skipped an unreadable ledger line ({err}); "
                          f"a run killed mid-write leaves such a line", LedgerWarning, stacklevel=2)
    return records


class LedgerError(GenbenchError):
    """A ledger that must be read whole (the gate's baseline) cannot be: the message names
    the file, the line and the field."""


class LedgerLineError(ValueError):
    """One ledger line is not a valid record (the message says why, without the location)."""


def read_ledger_strict(path: str | os.PathLike[str], *, role: str = "ledger",
                       torn_last_line_ok: bool = False) -> list[ClaimRecord]:
    """Every record of ``path``, or a :class:`LedgerError` naming the file and line.

    An empty ledger, an unreadable file and any line that is not a valid record are errors:
    a gate that silently drops baseline records would pass on nothing. ``torn_last_line_ok``
    (for a NEW ledger only) lets a last line cut short by a killed writer be skipped with a
    :class:`LedgerWarning`, as the append protocol allows.
    """
    path = Path(path)
    lines = list(_lines(path, role))
    records = []
    for index, (number, line) in enumerate(lines):
        try:
            records.append(parse_line(line))
        except LedgerLineError as err:
            if torn_last_line_ok and index == len(lines) - 1 and not _ends_with_newline(path):
                warnings.warn(f"{display(path)}:{number}: skipped the torn last line ({err}); a "
                              f"run killed mid-write leaves such a line", LedgerWarning,
                              stacklevel=2)
                continue
            raise LedgerError(f"{role} {display(path)}, line {number}: {err}. Fix: restore the "
                              f"file (e.g. `git checkout` the committed baseline) or re-record "
                              f"it with `genbench run`.") from None
    if not records:
        raise LedgerError(f"{role} {display(path)} holds no records: a gate against it would "
                          f"pass on nothing. Fix: point to the right ledger, or record one with "
                          f"`genbench run --ledger {display(path)}`.")
    return records


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _lines(path: Path, role: str = "ledger") -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines; unreadable files raise LedgerError."""
    if not path.exists():
        raise LedgerError(f"no {role} at {display(path)}: run the claims first (`genbench run`, "
                          f"or `pytest claims/`), or point to one with --ledger / $GENBENCH_LEDGER")
    try:
        data = path.read_bytes()
    except PermissionError as err:
        raise LedgerError(f"{role} {display(path)} cannot be read: permission denied "
                          f"({err.strerror}). Fix: `chmod u+r` it or ask its owner.") from err
    except OSError as err:  # a folder, a broken disk
        raise LedgerError(f"{role} {display(path)} cannot be read ({err.strerror or err}). "
                          f"Fix: point to a ledger file.") from err
    for number, raw in enumerate(data.split(b"\n"), 1):
        if raw.strip():
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, f"\0not UTF-8 at byte {err.start}"


def parse_line(line: str) -> ClaimRecord:
    """One ledger line as a record, or a :class:`LedgerLineError` saying what is wrong."""
    if line.startswith("\0"):
        raise LedgerLineError(f"the line is {line[1:]}")
    try:
        data = json.loads(line)
    except RecursionError:
        raise LedgerLineError("the JSON nests too deeply to be a record") from None
    except ValueError as err:
        raise LedgerLineError(f"not valid JSON ({err})") from None
    try:
        return ClaimRecord.from_dict(data)
    except (ConfigError, TypeError, ValueError, KeyError, RecursionError) as err:
        raise LedgerLineError(str(err)) from None


_STR, _OPT_STR, _DICT, _LIST, _NUMBER = "a string", "a string or null", "an object", "a list", "a number"
_RECORD_FIELDS = {
    "id": _STR, "source": _STR, "statement": _STR, "scale": _STR, "verdict": _STR,
    "checks": _LIST, "notes": _DICT, "sizes": _DICT, "seeds": _LIST, "device": _STR,
    "seconds": _NUMBER, "versions": _DICT, "commit": _OPT_STR, "timestamp": _STR,
    "figures": _LIST, "node_id": _STR, "error": _OPT_STR, "xfail": _OPT_STR,
    "case": _OPT_STR, "paper": _OPT_STR,
}
_REQUIRED = ("id", "source", "statement", "scale", "verdict")
_CHECK_FIELDS = {"name": _STR, "kind": _STR, "bound": _STR, "passed": "a bool",
                 "measured": "a scalar", "paper": "a scalar", "lo": "a number or null",
                 "hi": "a number or null", "tol": "a number or null"}


def _type_ok(value: Any, wanted: str) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {_STR: isinstance(value, str), _OPT_STR: value is None or isinstance(value, str),
            _DICT: isinstance(value, dict), _LIST: isinstance(value, (list, tuple)), _NUMBER: number,
            "a bool": isinstance(value, bool), "a number or null": value is None or number,
            "a scalar": value is None or isinstance(value, (bool, int, float, str)),
            }[wanted]


def check_record_fields(data: Any) -> None:
    """Raise a ConfigError naming the first field of a record dict with a wrong type or value.

    Checks every field the gate and the report read (the rest of a newer schema is ignored),
    and that each check's ``tol`` is finite and >= 0: an infinite tolerance would let any
    value through the gate, a negative or NaN one none.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a record must be a JSON object, got {type(data).__name__}")
    for name in _REQUIRED:
        if name not in data:
            raise ConfigError(f"field {name!r} is missing")
    for name, wanted in _RECORD_FIELDS.items():
        if name in data and not _type_ok(data[name], wanted):
            raise ConfigError(f"field {name!r} must be {wanted}, got "
                              f"{type(data[name]).__name__}: {_short(data[name])}")
    if data["scale"] not in SCALES:
        raise ConfigError(f"field 'scale' must be one of {SCALES}, got {_short(data['scale'])}")
    if data["verdict"] not in VERDICTS:
        raise ConfigError(f"field 'verdict' must be one of {VERDICTS}, got "
                          f"{_short(data['verdict'])}")
    for i, check in enumerate(data.get("checks", ())):
        where = f"checks[{i}]"
        if not isinstance(check, dict):
            raise ConfigError(f"field {where!r} must be an object, got {type(check).__name__}")
        for name in ("name", "kind", "measured", "passed", "bound"):
            if name not in check:
                raise ConfigError(f"field '{where}.{name}' is missing")
        for name, wanted in _CHECK_FIELDS.items():
            if name in check and not _type_ok(check[name], wanted):
                raise ConfigError(f"field '{where}.{name}' ({check.get('name')!r}) must be "
                                  f"{wanted}, got {type(check[name]).__name__}: "
                                  f"{_short(check[name])}")
        tol = check.get("tol")
        if tol is not None and not (math.isfinite(tol) and tol >= 0):
            raise ConfigError(f"field '{where}.tol' ({check['name']!r}) must be finite and >= 0, "
                              f"got {tol!r}")
    for i, figure in enumerate(data.get("figures", ())):
        if not isinstance(figure, dict):
            raise ConfigError(f"field 'figures[{i}]' must be an object, got "
                              f"{type(figure).__name__}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def display(path: Path | str) -> str:
    """A path as printable text (bytes that are not UTF-8 show as \\xNN)."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def latest(records: Iterable[ClaimRecord]
           ) -> dict[tuple[str, str | None, str], ClaimRecord]:
    """The last appended record of each (claim id, case, scale), sorted by id, case, scale."""
    last: dict[tuple[str, str | None, str], ClaimRecord] = {}
    for record in records:
        last[record.key] = record
    return dict(sorted(last.items(),
                       key=lambda kv: (kv[0][0], kv[0][1] or "", SCALES.index(kv[0][2]))))
