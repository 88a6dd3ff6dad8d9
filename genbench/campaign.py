"""A resumable campaign: the selected claim cases, cheapest first, one pytest process per case.

``genbench run --scale full --device cpu --budget 2h`` (with ``--budget``/``--memory``/
``--campaign``) comes here instead of one ``pytest claims`` run:

1. the plan (:mod:`genbench.plan`) collects the cases and estimates each one;
2. cases already recorded *for the same code and settings* are skipped;
3. the rest run cheapest first, each as its own ``python -m pytest NODE_ID`` child, which
   appends the case's record to the ledger when it ends (the plugin does that), so a campaign
   stopped at any moment loses at most the case in progress;
4. a case whose estimate does not fit what is left of the budget, or whose memory does not fit
   ``--memory``, is not started (listed at the end with the reason);
5. runs that several cases share (an extreme-overfitting study, Table 1's true-label runs:
   the plan's ``Part.shared``) train once: the children share one disk run cache
   (:func:`run_cache_dir`), and once a case that trains them is recorded, the other cases are
   estimated (and ordered, and held to the budget) by what is left to pay, as is a resumed
   campaign whose recorded cases used the same run cache (the journal names it), and a
   narrower one (``-k``) after a campaign that trained the runs for a case it does not select.

The key of a record is (claim id, case, scale, fingerprint). The fingerprint
(:func:`fingerprint`) is a sha256 over the source of every ``.py`` file of the genbench package,
the claim's module and the ``conftest.py`` files above it, the scale, the device kind and the
torch version: a change to any of them makes the case due again. It is not stored in the record
itself (the record schema belongs to the plugin): the campaign writes a *journal* next to the
ledger (``<ledger>.campaign.jsonl``) with a ``start`` line (node, fingerprint, time, estimate)
before each child starts and an ``end`` line (exit status, wall seconds, peak memory) after.
A case counts as recorded when the ledger holds a record of its node written at or after a
``start`` line with the current fingerprint; the record is the completion marker, so a
campaign killed between the record and the ``end`` line does not run the case twice. Every
child dies with its campaign (``PR_SET_PDEATHSIG``), so no orphan writes a late record.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from genbench.errors import GenbenchError
from genbench.plan import (GIB, Estimate, Plan, Rates, fmt_seconds, make_plan, parse_bytes,
                           parse_duration)


# ----------------------------------------------------------------------------- fingerprint


def _package_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def fingerprint(module: str | os.PathLike[str], scale: str, device: str = "cpu",
                rootdir: str | os.PathLike[str] | None = None) -> str:
    """16 hex digits of sha256 over the code and settings a claim case runs with.

    Hashed: every ``.py`` file of the genbench package the case's child imports (the
    checkout's ``genbench/`` when the rootdir has one, else the installed one; path and bytes), the claim module and each ``conftest.py`` from the rootdir down to it, ``scale``,
    the device kind, torch's version and ``$GENBENCH_RUNS`` when set. Settings live in the
    claim module (``SETTINGS``), so a settings change is a module change; ``GENBENCH_RUNS``
    changes the full-scale studies' R without one (a record at R = 20 is not one at 200).
    """
    import genbench

    root = Path(rootdir or Path.cwd()).resolve()
    module = (root / module).resolve() if not Path(module).is_absolute() else Path(module)
    h = hashlib.sha256()
    package = root / "genbench"  # what a child started in the checkout imports (cwd first)
    if not (package / "__init__.py").is_file():
        package = Path(genbench.__file__).resolve().parent
    for path in _package_files(package):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    conftests = [d / "conftest.py" for d in (root, *reversed(module.parents))
                 if d == root or root in d.parents]
    for path in [*dict.fromkeys(c for c in conftests if c.is_file()), module]:
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    kind = device.split(":")[0]
    h.update(f"{scale}\0{kind}\0{_torch_version()}".encode())
    runs = os.environ.get("GENBENCH_RUNS", "").strip()
    if runs:
        h.update(f"\0GENBENCH_RUNS={runs}".encode())
    return h.hexdigest()[:16]


def _torch_version() -> str:
    """``torch.__version__`` (local tag included, e.g. ``2.14.1+cu130``) read from torch's
    ``version.py`` without importing torch, so that the campaign process stays small."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "version.py"
        if path.is_file():
            found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", path.read_text(), re.M)
            if found:
                return found.group(1)
    import importlib.metadata

    return importlib.metadata.version("torch")


# ----------------------------------------------------------------------------- the journal


def journal_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name.removesuffix(".jsonl") + ".campaign.jsonl")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn last line of a killed writer
    return out


def recorded(ledger: Path, journal: Path, fingerprints: dict[str, str]) -> dict[str, dict[str, Any]]:
    """node id -> its ledger record (as a dict), for nodes recorded under their current
    fingerprint: a record of the node written at or after a journal ``start`` with it."""
    starts: dict[str, list[str]] = {}
    for entry in _read_jsonl(journal):
        node = entry.get("node_id")
        if entry.get("event") == "start" and fingerprints.get(node) == entry.get("fingerprint"):
            starts.setdefault(node, []).append(entry["started"])
    done: dict[str, dict[str, Any]] = {}
    for record in _read_jsonl(ledger):
        node = record.get("node_id")
        if node in starts and any(record.get("timestamp", "") >= s for s in starts[node]):
            done[node] = record
    return done


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Outcome:
    """What happened to one case of the campaign."""

    node_id: str
    status: str  # recorded (with the verdict), skipped (already recorded), not run, failed
    detail: str = ""
    seconds: float | None = None
    estimate: float | None = None
    peak_memory: int | None = None


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the campaign process dies (Linux prctl)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def case_command(node_id: str, scale: str, ledger: Path, extra: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "pytest", node_id, f"--scale={scale}", f"--ledger={ledger}",
            "-p", "no:cacheprovider", "-q", *extra]


def run_case(command: list[str], env: dict[str, str], timeout: float | None,
             cwd: Path) -> tuple[int, float, int]:
    """(exit status, wall seconds, peak RSS bytes) of one child; killed past ``timeout``."""
    start = time.monotonic()
    child = subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=_die_with_parent)
    deadline = None if timeout is None else start + timeout
    try:
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                return child.returncode, time.monotonic() - start, usage.ru_maxrss * 1024
            if deadline is not None and time.monotonic() > deadline:
                child.kill()
            time.sleep(0.2)
    except BaseException:
        child.kill()  # Ctrl-C / SIGTERM: the case in progress is lost, nothing half-written
        child.wait()
        raise


def run_campaign(scale: str = "full", keyword: str | None = None, *, ledger: str | os.PathLike[str],
                 budget: str | float | None = None, memory: str | int | None = None,
                 device: str | None = "cpu", claims: str = "claims",
                 rootdir: str | os.PathLike[str] | None = None, retry_errors: bool = False,
                 extra: Sequence[str] = (), plan: Plan | None = None,
                 rates: Rates | None = None, dry_run: bool = False) -> list[Outcome]:
    """Run the selected cases not yet recorded for their fingerprint, cheapest first."""
    root = Path(rootdir or Path.cwd()).resolve()
    ledger = Path(ledger).resolve()
    journal = journal_path(ledger)
    with _only_campaign(journal):
        return _run_campaign(scale, keyword, root, ledger, journal, budget, memory, device, claims,
                             retry_errors, extra, plan, rates, dry_run)


@contextlib.contextmanager
def _only_campaign(journal: Path) -> Iterator[None]:
    """One campaign per ledger at a time (two would run the same cases twice): an exclusive
    lock on ``<journal>.lock``, released when the campaign ends or dies."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal.with_name(journal.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenbenchError(f"another campaign is running on {journal.name.removesuffix('.campaign.jsonl')}"
                                f".jsonl (lock {lock.name}); wait for it or stop it") from None
        yield


def _run_campaign(scale: str, keyword: str | None, root: Path, ledger: Path, journal: Path,
                  budget: str | float | None, memory: str | int | None, device: str | None,
                  claims: str, retry_errors: bool, extra: Sequence[str], plan: Plan | None,
                  rates: Rates | None, dry_run: bool) -> list[Outcome]:
    budget_s = parse_duration(budget) if isinstance(budget, str) else budget
    memory_limit = parse_bytes(memory) if isinstance(memory, str) else memory
    if plan is None and rates is None:  # collect and calibrate in a child: the campaign
        plan = plan_in_child(scale, keyword, memory, root)  # itself stays small (no torch)
    plan = plan or make_plan(scale, keyword, memory_limit=memory_limit, claims=claims,
                             rootdir=root, rates=rates)
    kind = device or os.environ.get("GENBENCH_DEVICE") or "cpu"
    if kind.startswith("cuda"):  # order, budget and journal estimates by the GPU column
        plan = plan.on_gpu()
    prints = {e.node_id: fingerprint(e.module, e.scale, kind, root) for e in plan.cases}
    done = recorded(ledger, journal, prints)
    if retry_errors:
        done = {n: r for n, r in done.items() if r.get("verdict") != "error"}

    order = sorted(plan.cases, key=lambda e: (e.seconds is None, e.seconds or 0.0, e.node_id))
    pending = [e for e in order if e.node_id not in done]
    outcomes = [Outcome(e.node_id, "skipped", f"recorded {done[e.node_id].get('timestamp')} "
                        f"({done[e.node_id].get('verdict')})") for e in order if e.node_id in done]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    if device:
        env["GENBENCH_DEVICE"] = device
    env["GENBENCH_RUN_CACHE"] = str(run_cache_dir())
    _say(f"campaign: {len(plan.cases)} case(s), {len(outcomes)} already recorded for this code, "
         f"{len(pending)} to go (est. {fmt_seconds(sum(e.seconds or 0 for e in pending))}); ledger "
         f"{ledger}, journal {journal.name}; run cache {env['GENBENCH_RUN_CACHE']} (runs shared "
         f"by several cases train once)")
    paid = paid_by_recorded(ledger, journal, plan, done, prints, env["GENBENCH_RUN_CACHE"],
                            kind, root)
    start, total = time.monotonic(), len(pending)
    for i in range(1, total + 1):
        # cheapest first by what is left to pay: a case whose shared runs an earlier case of
        # this campaign trained costs only its own part now
        costs = {e.node_id: still_to_pay(e, paid) for e in pending}
        e = min(pending, key=lambda x: (costs[x.node_id] is None, costs[x.node_id] or 0.0,
                                        x.node_id))
        pending.remove(e)
        cost = costs[e.node_id]
        left = None if budget_s is None else budget_s - (time.monotonic() - start)
        reason = _why_not(e, cost, left, memory_limit)
        if reason:
            outcomes.append(Outcome(e.node_id, "not run", reason, estimate=cost))
            continue
        remaining = sum(costs[x.node_id] or 0 for x in [e, *pending]
                        if not _why_not(x, costs[x.node_id], left, memory_limit))
        _say(f"campaign [{i}/{total}] {e.node_id}: est. {fmt_seconds(cost)}"
             f"{' (its shared runs already trained)' if cost != e.seconds else ''}, "
             f"{(e.memory or 0) / GIB:.1f} GiB; campaign ETA {fmt_seconds(remaining)}")
        if dry_run:
            outcomes.append(Outcome(e.node_id, "not run", "dry run", estimate=cost))
            continue
        _append(journal, {"event": "start", "node_id": e.node_id, "claim": e.claim, "case": e.case,
                          "scale": e.scale, "fingerprint": prints[e.node_id], "started": _now(),
                          "estimate_s": cost, "estimate_cold_s": e.seconds,
                          "estimate_memory": e.memory, "run_cache": env["GENBENCH_RUN_CACHE"],
                          "shared": sorted({p["shared"] for p in e.parts if p.get("shared")})})
        status, wall, peak = run_case(case_command(e.node_id, e.scale, ledger, extra), env,
                                      left, root)
        record = recorded(ledger, journal, {e.node_id: prints[e.node_id]}).get(e.node_id)
        _append(journal, {"event": "end", "node_id": e.node_id, "fingerprint": prints[e.node_id],
                          "ended": _now(), "exit_status": status, "wall_s": round(wall, 2),
                          "peak_rss": peak, "estimate_s": cost,
                          "verdict": record.get("verdict") if record else None})
        if record:
            paid |= {p["shared"] for p in e.parts if p.get("shared")}
            outcomes.append(Outcome(e.node_id, "recorded", str(record.get("verdict")), wall,
                                    cost, peak))
        else:
            outcomes.append(Outcome(e.node_id, "failed", f"no record (pytest exit status {status})",
                                    wall, cost, peak))
        _say(f"campaign [{i}/{total}] {e.node_id}: {outcomes[-1].status} "
             f"{outcomes[-1].detail} in {fmt_seconds(wall)} (est. {fmt_seconds(cost)}), "
             f"peak {peak / GIB:.2f} GiB")
    _summary(outcomes)
    return outcomes


def plan_in_child(scale: str, keyword: str | None, memory: str | int | None,
                  root: Path) -> Plan:
    """``genbench plan --json`` in a child process (importing the claims loads torch and every
    claim module: ~0.9 GB that would otherwise stay in the campaign process for hours)."""
    command = [sys.executable, "-m", "genbench.cli", "plan", f"--scale={scale}", "--json"]
    command += ["-k", keyword] if keyword else []
    command += ["--memory", str(memory)] if memory is not None else []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GenbenchError(f"`genbench plan` failed (exit status {done.returncode}):\n"
                            f"{done.stderr[-3000:]}")
    return Plan.from_json(done.stdout)


def run_cache_dir() -> Path:
    """Where a campaign's children keep trained runs: ``$GENBENCH_RUN_CACHE``, else
    ``$XDG_CACHE_HOME/genbench/runs`` (``~/.cache/genbench/runs``). Each case is its own
    process, so without a disk cache every case of an extreme-overfitting study would train
    the study again."""
    chosen = os.environ.get("GENBENCH_RUN_CACHE")
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "genbench" / "runs"


def paid_by_recorded(ledger: Path, journal: Path, plan: Plan, done: dict[str, Any],
                     prints: dict[str, str], run_cache: str, kind: str, root: Path) -> set[str]:
    """Shared runs that recorded cases trained into this same run cache, so that neither a
    resumed campaign nor a narrower one (``-k "F1b"`` after one that ran Figure 1c) counts them
    again: this campaign's cases recorded for this code (their shared parts from the plan), and
    cases outside its selection whose journal ``start`` line names its shared runs, recorded
    under their current fingerprint."""
    parts = {e.node_id: e.parts for e in plan.cases}
    starts = [e for e in _read_jsonl(journal)
              if e.get("event") == "start" and e.get("run_cache") == run_cache]
    outside = {e["node_id"]: fingerprint(e["node_id"].split("::")[0], e.get("scale", "full"),
                                         kind, root)
               for e in starts if e["node_id"] not in parts and e.get("shared")}
    done = {**done, **recorded(ledger, journal, outside)}
    current = {**prints, **outside}
    paid: set[str] = set()
    for e in starts:
        node = e["node_id"]
        if node in done and e.get("fingerprint") == current.get(node):
            paid |= set(e.get("shared") or ())
            paid |= {p["shared"] for p in parts.get(node, ()) if p.get("shared")}
    return paid


def still_to_pay(e: Estimate, paid: set[str]) -> float | None:
    """The case's estimate less its parts whose shared runs are in ``paid`` (trained by a case
    this campaign already recorded; they come from the run cache)."""
    if e.seconds is None:
        return None
    return e.seconds - sum(p["seconds"] for p in e.parts if p.get("shared") in paid)


def _why_not(e: Estimate, cost: float | None, left: float | None, memory_limit: int | None
             ) -> str:
    if cost is None:  # no cost model: runs last, while budget is left
        return "" if e.why_not.startswith("no cost model") and (left is None or left > 0) \
            else (e.why_not or "no estimate")
    if memory_limit is not None and (e.memory or 0) > memory_limit:
        return f"memory {(e.memory or 0) / GIB:.1f} GiB > {memory_limit / GIB:.1f} GiB"
    if left is not None and cost > left:
        return f"est. {fmt_seconds(cost)} > budget left {fmt_seconds(max(left, 0))}"
    return ""


def _say(text: str) -> None:
    print(text, flush=True)


def _summary(outcomes: Iterable[Outcome]) -> None:
    outcomes = list(outcomes)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    _say("campaign: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for o in outcomes:
        if o.status in ("not run", "failed"):
            _say(f"  {o.status}: {o.node_id}: {o.detail}")


def campaign_main(scale: str, keyword: str | None, ledger: str | None, budget: str | None,
                  memory: str | None, device: str | None, retry_errors: bool = False,
                  dry_run: bool = False, extra: Sequence[str] = (),
                  out: str | None = None) -> int:
    """``genbench run ... --budget/--memory/--campaign``: run, then render ``out`` from the
    ledger (as ``genbench run`` does); exit 0 when no started case failed."""
    if not ledger:
        raise GenbenchError("a campaign needs its own --ledger (e.g. results/paper-scale-cpu.jsonl)")
    try:
        outcomes = run_campaign(scale, keyword, ledger=ledger, budget=budget, memory=memory,
                                device=device, retry_errors=retry_errors, dry_run=dry_run,
                                extra=extra)
    except KeyboardInterrupt:
        _say(f"campaign: interrupted; the case in progress is lost, every finished case is in "
             f"{ledger}; run the same command again to continue")
        return 130
    if out and Path(ledger).is_file():
        from genbench.report import write_report

        written = write_report(ledger, out)
        _say(f"campaign: report written to {written[1]}")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


# ----------------------------------------------------------------------------- plan vs measured


@dataclass(frozen=True)
class Accuracy:
    """One finished case of a campaign: the plan's estimate against what the run measured."""

    node_id: str
    verdict: str | None
    estimate_s: float | None
    wall_s: float
    claim_s: float | None  # the record's own seconds (the test body, without pytest's start)
    estimate_memory: int | None
    peak_rss: int

    @property
    def ratio(self) -> float | None:
        """measured wall / estimate (> 1: the plan was optimistic)."""
        return None if not self.estimate_s else self.wall_s / self.estimate_s


def accuracy(ledger: str | os.PathLike[str]) -> list[Accuracy]:
    """Every finished case of the campaign journal, in order, with its ``start`` line's estimate
    and the record it wrote (the node's record stamped between its start and its end)."""
    ledger = Path(ledger)
    records = _read_jsonl(ledger)
    starts: dict[str, dict[str, Any]] = {}
    found = []
    for entry in _read_jsonl(journal_path(ledger)):
        node = entry.get("node_id")
        if entry.get("event") == "start":
            starts[node] = entry
            continue
        if entry.get("event") != "end":
            continue
        start = starts.get(node, {})
        record = next((r for r in records if r.get("node_id") == node and
                       start.get("started", "") <= r.get("timestamp", "") <= entry.get("ended", "")),
                      None)
        found.append(Accuracy(node, entry.get("verdict"), entry.get("estimate_s"), entry["wall_s"],
                              record.get("seconds") if record else None,
                              start.get("estimate_memory"), entry.get("peak_rss", 0)))
    return found


def accuracy_table(ledger: str | os.PathLike[str]) -> str:
    """Markdown: each finished case's estimate vs measured time and memory, and the totals."""
    rows = accuracy(ledger)
    lines = ["| case | verdict | estimate | measured (wall) | test body | measured / estimate | "
             "memory est. | peak RSS |", "|---|---|---|---|---|---|---|---|"]
    for a in rows:
        ratio = "?" if a.ratio is None else f"{a.ratio:.2f}"
        mem = "?" if a.estimate_memory is None else f"{a.estimate_memory / GIB:.2f} GiB"
        body = "-" if a.claim_s is None else fmt_seconds(a.claim_s)
        lines.append(f"| {a.node_id.split('::')[-1]} | {a.verdict or 'no record'} | "
                     f"{fmt_seconds(a.estimate_s)} | {fmt_seconds(a.wall_s)} | {body} | {ratio} | "
                     f"{mem} | {a.peak_rss / GIB:.2f} GiB |")
    est = sum(a.estimate_s or 0 for a in rows)
    wall = sum(a.wall_s for a in rows)
    if rows and est:
        lines.append(f"| **total** ({len(rows)} cases) | | {fmt_seconds(est)} | "
                     f"{fmt_seconds(wall)} | | {wall / est:.2f} | | |")
    return "\n".join(lines)
