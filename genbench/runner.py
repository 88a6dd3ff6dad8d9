"""``genbench run``: the claims through pytest, then the report.

pytest runs in a child process (``python -m pytest``) so that a crash of a claim, or CUDA state,
cannot take the command down before the report is written, and so that the run is exactly what
``pytest claims/`` would do by hand. The ledger path is resolved once here and passed to pytest,
so the run and the report read and write the same file.

Ctrl-C (or a SIGTERM from a job scheduler's time limit) stops pytest, which keeps every record
written so far (each claim appends its own when it ends); the command then still renders the
report from them and says so, without a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

from genbench.errors import GenbenchError
from genbench.ledger import LedgerWarning, default_ledger_path
from genbench.report import write_report


def pytest_command(scale: str, keyword: str | None, ledger: Path,
                   extra: Sequence[str] = ()) -> list[str]:
    """The pytest command line of a claims run: full scale selects the ``gpu`` cases."""
    if scale not in ("smoke", "full"):
        raise GenbenchError(f"--scale must be smoke or full, got {scale!r}")
    command = [sys.executable, "-m", "pytest", "claims", f"--scale={scale}", f"--ledger={ledger}"]
    command += ["-m", "gpu"] if scale == "full" else []
    command += ["-k", keyword] if keyword else []
    return command + list(extra)


def run_claims(scale: str = "smoke", keyword: str | None = None,
               ledger: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] = "report",
               extra: Sequence[str] = (), threads: int | None = None) -> int:
    """Run ``pytest claims/`` at one scale, write the report, return pytest's exit status.

    ``threads`` sets ``GENBENCH_THREADS`` for the pytest process (torch's CPU threads)."""
    if threads is not None and threads < 1:
        raise GenbenchError(f"--threads must be a positive number of CPU threads, got {threads}")
    if not Path("claims").is_dir():
        raise GenbenchError(f"no claims/ directory in {Path.cwd()}: run `genbench run` from the "
                            f"root of a genbench checkout")
    path = Path(ledger).resolve() if ledger else default_ledger_path().resolve()
    check_destinations(path, Path(out), os.environ.get("GENBENCH_RUN_CACHE") or None)
    size_before = path.stat().st_size if path.is_file() else None
    env = dict(os.environ, **({"GENBENCH_THREADS": str(threads)} if threads else {}))
    status = _run_pytest(pytest_command(scale, keyword, path, extra), env)
    interrupted = status in (2, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM)
    appended = path.is_file() and (size_before is None or path.stat().st_size != size_before)
    if status == 0 and not appended:
        print(f"genbench run: every selected claim case skipped at scale {scale} (see pytest's "
              f"skip reasons above; full scale needs a CUDA GPU and the full datasets), so "
              f"nothing was measured: no record was written to {path} and no report rendered")
        return 0
    if not path.is_file():
        print(f"genbench run: pytest wrote no claim records to {path} (exit status {status})")
        return status or 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LedgerWarning)
        written = write_report(path, out)
    for warning in caught:  # one line each (a torn last line of an interrupted run, ...)
        print(f"genbench run: {warning.message}", file=sys.stderr)
    print(f"genbench run: report written to {written[1]} (and {written[0].name}); "
          f"ledger {path}; pytest exit status {status}")
    if interrupted:
        print(f"genbench run: the run was interrupted; the records of the claims that finished "
              f"are in {path}; the report above shows them (render again any time with "
              f"`genbench report --ledger {path}`)")
    return status


def check_destinations(ledger: Path, out: Path, run_cache: str | None) -> None:
    """Fail before any claim runs if the ledger, the report folder or the run cache
    ($GENBENCH_RUN_CACHE) cannot be written: otherwise a long run would end with its records,
    report or trained runs lost. Raises a GenbenchError naming the path and the cause."""
    _writable_file(ledger, "--ledger")
    _writable_folder(out, "--out (the report folder)")
    if run_cache:
        _writable_folder(Path(run_cache), "GENBENCH_RUN_CACHE (the run cache)")


def _writable_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".genbench-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise GenbenchError(f"{what} {folder} is not a writable folder ({err.strerror or err}); "
                            f"nothing was run. Fix: choose a folder you can write, or make it "
                            f"writable.") from err


def _writable_file(path: Path, what: str) -> None:
    if path.exists() and not path.is_file():
        raise GenbenchError(f"{what} {path} is not a file (a folder?); nothing was run. Fix: "
                            f"give the path of a ledger file (e.g. {path / 'ledger.jsonl'}).")
    _writable_folder(path.parent, f"{what}'s folder")
    if path.exists():
        try:
            with open(path, "ab"):  # opening for append changes nothing
                pass
        except OSError as err:
            raise GenbenchError(f"{what} {path} cannot be appended to ({err.strerror or err}); "
                                f"nothing was run. Fix: make it writable or choose another "
                                f"ledger.") from err


def _run_pytest(command: list[str], env: dict[str, str]) -> int:
    """pytest's exit status; Ctrl-C reaches pytest too (same process group), so here it only
    waits for pytest to write its summary and exit, and SIGTERM is passed on to it."""
    child = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGINT))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # pytest got the same SIGINT and is finishing; a second one kills it
    finally:
        signal.signal(signal.SIGTERM, previous)
