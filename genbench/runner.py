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
from pathlib import Path
from typing import Sequence

from genbench.errors import GenbenchError
from genbench.ledger import default_ledger_path
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
    env = dict(os.environ, **({"GENBENCH_THREADS": str(threads)} if threads else {}))
    status = _run_pytest(pytest_command(scale, keyword, path, extra), env)
    interrupted = status in (2, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM)
    if not path.is_file():
        print(f"genbench run: pytest wrote no claim records to {path} (exit status {status})")
        return status or 1
    written = write_report(path, out)
    print(f"genbench run: report written to {written[1]} (and {written[0].name}); "
          f"ledger {path}; pytest exit status {status}")
    if interrupted:
        print(f"genbench run: the run was interrupted; the records of the claims that finished "
              f"are in {path}; the report above shows them (render again any time with "
              f"`genbench report --ledger {path}`)")
    return status


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
