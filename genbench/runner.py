"""``genbench run``: the claims through pytest, then the report.

pytest runs in a child process (``python -m pytest``) so that a crash of a claim, or CUDA state,
cannot take the command down before the report is written, and so that the run is exactly what
``pytest claims/`` would do by hand. The ledger path is resolved once here and passed to pytest,
so the run and the report read and write the same file.
"""

from __future__ import annotations

import os
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
               extra: Sequence[str] = ()) -> int:
    """Run ``pytest claims/`` at one scale, write the report, return pytest's exit status."""
    if not Path("claims").is_dir():
        raise GenbenchError(f"no claims/ directory in {Path.cwd()}: run `genbench run` from the "
                            f"root of a genbench checkout")
    path = Path(ledger).resolve() if ledger else default_ledger_path().resolve()
    status = subprocess.run(pytest_command(scale, keyword, path, extra), check=False).returncode
    if not path.is_file():
        print(f"genbench run: pytest wrote no claim records to {path} (exit status {status})")
        return status or 1
    written = write_report(path, out)
    print(f"genbench run: report written to {written[1]} (and {written[0].name}); "
          f"ledger {path}; pytest exit status {status}")
    return status
