"""Live claim progress in pytest: which claim runs, its training, the time left, the verdicts.

Loaded by the genbench pytest plugin (``pytest_plugins``), active only in sessions that run
claim tests. Why this exists: a claim trains for up to minutes behind one dot, pytest captures
the engine's tqdm bar, and tqdm is off when output is not a terminal. So:

* when a claim case starts, one line names it (id, case, scale) with an estimate of its time and
  of the time left in all, from the seconds recorded in the baseline ledger
  (``results/baseline/<scale>.jsonl``; ``--claim-estimates PATH`` to use another ledger);
* while it trains, the engine's epochs (:mod:`genbench.progress`) are shown: on a terminal as
  one line rewritten in place, otherwise (CI logs, ``| tee``) as a plain line every
  ``LOG_EVERY`` seconds;
* when it ends, a line with its outcome and time;
* at the end, a table of the records this session wrote: verdict, each check's measured value
  beside the paper's value and the bound, passing claims included;
* an interrupted run (Ctrl-C, or SIGTERM from a time limit, which is turned into the same
  interruption) ends with where its records are and how to render them.

``--claim-progress auto|lines|off`` (env ``GENBENCH_PROGRESS``) picks the display, and
``--threads N`` (env ``GENBENCH_THREADS``) sets torch's CPU threads for shared machines.
Output goes through pytest's terminal reporter with capture suspended, as pytest's own live
logging does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from genbench import progress
from genbench.ledger import ClaimRecord, fmt

PROGRESS_CHOICES = ("auto", "lines", "off")
LOG_EVERY = 30.0  # seconds between progress lines when output is not a terminal
TTY_EVERY = 0.25  # seconds between rewrites of the live line on a terminal


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("genbench", "genbench claims")
    group.addoption("--claim-progress", choices=PROGRESS_CHOICES, default=None,
                    help="live progress of claims: auto (a rewritten line on a terminal, plain "
                         "lines otherwise), lines, off (default: $GENBENCH_PROGRESS or auto)")
    group.addoption("--claim-estimates", default=None, metavar="LEDGER",
                    help="ledger whose recorded seconds estimate the time left (default: "
                         "<rootdir>/results/baseline/<scale>.jsonl)")
    group.addoption("--threads", type=int, default=None, metavar="N",
                    help="torch CPU threads (default: $GENBENCH_THREADS, else torch's default)")


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--threads")
    threads = os.environ.get("GENBENCH_THREADS") or None if threads is None else threads
    if threads is not None:
        try:
            count = int(threads)
            if count < 1:
                raise ValueError
        except ValueError:
            raise pytest.UsageError(f"--threads / GENBENCH_THREADS must be a positive integer, "
                                    f"got {threads!r}") from None
        import torch

        torch.set_num_threads(count)
    mode = config.getoption("--claim-progress") or os.environ.get("GENBENCH_PROGRESS") or "auto"
    if mode not in PROGRESS_CHOICES:
        raise pytest.UsageError(f"GENBENCH_PROGRESS={mode!r} is not one of {PROGRESS_CHOICES}")
    if hasattr(config, "workerinput") or config.option.collectonly:
        return  # an xdist worker (the controller reports), or nothing runs
    config.pluginmanager.register(Live(config, mode), "genbench-live")


def label(claim_id: str, case: str | None) -> str:
    return claim_id + (f"[{case}]" if case else "")


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``1 h 05 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Live:
    """The live display of one pytest session (see the module docstring)."""

    def __init__(self, config: pytest.Config, mode: str) -> None:
        self.config, self.mode = config, mode
        self.items: dict[str, tuple[str, str | None, str]] = {}  # nodeid -> (id, case, scale)
        self.estimates: dict[str, float | None] = {}
        self.done: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.current: str | None = None
        self.started = 0.0
        self.last_shown = 0.0
        self.ledger_offset = 0
        self.tty = False
        self._previous_sigterm: Any = None

    # -- helpers ---------------------------------------------------------------------------
    @property
    def tr(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    @contextlib.contextmanager
    def _uncaptured(self) -> Iterator[None]:
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if capman is None:
            yield
            return
        with capman.global_and_fixture_disabled():
            yield

    def _line(self, text: str) -> None:
        if self.tr is None:
            return
        with self._uncaptured():
            self.tr.write_line(text)

    def _rewrite(self, text: str) -> None:
        with self._uncaptured():
            self.tr.rewrite(text[: self.tr._tw.fullwidth - 1], erase=True)

    def _ledger_path(self) -> Path | None:
        from genbench import pytest_plugin

        return self.config.stash.get(pytest_plugin._ledger_path, None)

    # -- collection: what will run, and how long it took last time --------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from genbench.catalogue import case_of

        for item in session.items:
            mark = item.get_closest_marker("claim")
            scale = getattr(getattr(item, "callspec", None), "params", {}).get("scale")
            if mark is not None and mark.args and scale:
                self.items[item.nodeid] = (str(mark.args[0]), case_of(item), scale)
        if not self.items or self.mode == "off":
            self.items = {} if self.mode == "off" else self.items
            return
        self.tty = self.mode == "auto" and self.tr is not None and bool(
            self.tr.isatty() if callable(self.tr.isatty) else self.tr.isatty)
        self.estimates = self._estimates()
        known = [s for s in self.estimates.values() if s is not None]
        missing = len(self.estimates) - len(known)
        self._line(f"genbench: {len(self.items)} claim cases" + (
            f", about {duration(sum(known))} by the baseline's recorded times"
            + (f" (+ {missing} without one)" if missing else "") if known
            else " (no recorded times to estimate from)"))
        path = self._ledger_path()
        self.ledger_offset = path.stat().st_size if path is not None and path.is_file() else 0
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm)

    def _estimates(self) -> dict[str, float | None]:
        """Seconds per collected claim case from the baseline ledger: the record of the same
        (id, case, scale); else the claim's one record (written before cases existed) shared
        equally among its cases."""
        from genbench.ledger import read_ledger

        scales = {scale for _, _, scale in self.items.values()}
        option = self.config.getoption("--claim-estimates")
        records: list[ClaimRecord] = []
        for scale in scales:
            path = Path(option) if option else \
                self.config.rootpath / "results" / "baseline" / f"{scale}.jsonl"
            if not path.is_file():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    records += read_ledger(path)
                except Exception:  # noqa: BLE001 - estimates are optional, never fatal
                    continue
        exact = {(r.id, getattr(r, "case", None), r.scale): r.seconds for r in records}
        cases: dict[tuple[str, str], int] = {}
        for claim_id, _, scale in self.items.values():
            cases[claim_id, scale] = cases.get((claim_id, scale), 0) + 1
        found: dict[str, float | None] = {}
        for nodeid, (claim_id, case, scale) in self.items.items():
            seconds = exact.get((claim_id, case, scale))
            if seconds is None and (claim_id, None, scale) in exact:
                seconds = exact[claim_id, None, scale] / cases[claim_id, scale]
            found[nodeid] = seconds
        return found

    def _left(self, now: float) -> float:
        """Seconds left in all: the estimates of the cases not started, plus what is left of
        the running one's."""
        left = sum(s or 0.0 for n, s in self.estimates.items()
                   if n not in self.done and n != self.current)
        if self.current is not None:
            left += max(0.0, (self.estimates.get(self.current) or 0.0) - (now - self.started))
        return left

    def _left_words(self, now: float) -> str:
        if not any(s is not None for s in self.estimates.values()):
            return ""
        est = self.estimates.get(self.current or "")
        if est is not None and now - self.started > est:
            return f"; about {duration(self._left(now))} for the claims after it"
        return f"; about {duration(self._left(now))} left in all"

    # -- one claim case ------------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if nodeid not in self.items:
            return
        claim_id, case, scale = self.items[nodeid]
        self.current, self.started, self.last_shown = nodeid, time.monotonic(), 0.0
        est = self.estimates.get(nodeid)
        position = len(self.done) + 1
        self._line(f"[{position}/{len(self.items)}] {label(claim_id, case)} ({scale}) started: "
                   + (f"about {duration(est)}" if est is not None else "no recorded time")
                   + self._left_words(time.monotonic()))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        if item.nodeid not in self.items:
            return (yield)
        with progress.listen(self._epoch):
            return (yield)

    def _epoch(self, event: progress.Epoch) -> None:
        now = time.monotonic()
        if now - self.last_shown < (TTY_EVERY if self.tty else LOG_EVERY) and \
                event.epoch != 1 and event.epoch != event.max_epochs:
            return
        self.last_shown = now
        claim_id, case, _ = self.items[self.current or ""]
        est = self.estimates.get(self.current or "")
        elapsed = now - self.started
        models = f" x{event.models}" if event.models > 1 else ""
        text = (f"  {label(claim_id, case)}: {event.name}{models} epoch {event.epoch}/"
                f"{event.max_epochs}, train acc {event.acc:.3f}, loss {event.loss:.4g}; "
                f"{duration(elapsed)} in"
                + (f", about {duration(est - elapsed)} left" if est and est > elapsed else
                   f", past its estimate of {duration(est)}" if est is not None else "")
                + self._left_words(now))
        if self.tty:
            self._rewrite(text)
        else:
            self._line(text)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.items:
            return
        if report.when == "call" or report.outcome != "passed":
            if hasattr(report, "wasxfail"):
                outcome = "known gap (xfailed)" if report.skipped else "XPASS (gap closed?)"
            elif report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                outcome = f"skipped ({str(reason).removeprefix('Skipped: ')})"
            else:
                outcome = {"passed": "pass", "failed": "FAIL" if report.when == "call"
                           else f"ERROR in {report.when}"}[report.outcome]
            self.outcomes.setdefault(report.nodeid, outcome)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if nodeid not in self.items:
            return
        claim_id, case, scale = self.items[nodeid]
        seconds = time.monotonic() - self.started
        self.done.add(nodeid)
        self.current = None
        est = self.estimates.get(nodeid)
        text = (f"  {label(claim_id, case)} ({scale}): {self.outcomes.get(nodeid, 'done')} in "
                f"{duration(seconds)}" + (f" (baseline {duration(est)})" if est is not None else ""))
        if self.tty:
            self._rewrite(text)
            with self._uncaptured():
                self.tr.write("\n")
                self.tr.currentfspath = None  # the next result starts its own line
        else:
            with self._uncaptured():
                self.tr.write("\n")
            self._line(text)

    # -- the end -------------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        if not self.items:
            return
        path = self._ledger_path()
        records = self._session_records(path)
        tr = terminalreporter
        if records:
            tr.section("genbench: claim verdicts (this run)", sep="=")
            for line in verdict_table(records):
                tr.write_line(line)
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            tr.write_line(f"genbench: interrupted after {len(records)} claim records; they are "
                          f"in {path}. `genbench report --ledger {path}` renders them.",
                          yellow=True, bold=True)
        elif records:
            tr.write_line(f"genbench: {len(records)} records appended to {path}; "
                          f"`genbench report --ledger {path}` renders them.")

    def _session_records(self, path: Path | None) -> list[ClaimRecord]:
        """The records this session appended (read from the ledger offset at collection)."""
        if path is None or not path.is_file():
            return []
        with open(path, "rb") as f:
            f.seek(self.ledger_offset)
            lines = f.read().decode(errors="replace").splitlines()
        ours = set(self.items)
        records = []
        for line in lines:
            try:
                record = ClaimRecord.from_json(line)
            except Exception:  # noqa: BLE001 - a torn or foreign line is not ours to judge
                continue
            if record.node_id in ours:
                records.append(record)
        return records


def _sigterm(signum: int, frame: Any) -> None:
    """A time limit's SIGTERM ends the run like Ctrl-C: records kept, summary printed."""
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")


def verdict_word(record: ClaimRecord) -> str:
    if record.verdict == "fail" and record.xfail:
        return "known gap"
    return {"pass": "pass", "fail": "FAIL", "error": "ERROR"}.get(record.verdict, record.verdict)


def verdict_table(records: list[ClaimRecord]) -> list[str]:
    """One row per record, then one row per check: measured beside the paper and the bound."""
    rows = [("claim", "scale", "verdict", "seconds", "check", "measured", "paper", "needs")]
    for r in records:
        checks = r.checks or ()
        head = (label(r.id, getattr(r, "case", None)), r.scale, verdict_word(r), f"{r.seconds:.1f}")
        if not checks:
            rows.append(head + ("-", "-", "-", (r.error or "")[:60]))
        for i, c in enumerate(checks):
            mark = "" if c.passed else " x"
            rows.append((head if i == 0 else ("", "", "", ""))
                        + (c.name, fmt(c.measured) + mark, "-" if c.paper is None else fmt(c.paper),
                           c.bound))
    widths = [min(44, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [cell if len(cell) <= w else cell[: w - 1] + "~" for cell, w in zip(row, widths)]
        out.append("  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip())
    return out
