'''The genbench pytest plugin: claims as tests, at two scales, recorded to a ledger.

Registered through the ``pytest11`` entry point, so it is active in every pytest session of an
environment where genbench is installed (it does nothing to tests without the ``claim`` mark).

Writing a claim (``claims/test_<paper>_<topic>.py``)::

    import pytest
    from genbench import data, training   # claims only compose library calls

    SETTINGS = {"smoke": dict(n_train=2_000, epochs=30), "full": dict(n_train=50_000, epochs=100)}

    @pytest.mark.claim("Z.T1.fit_random", source="Zhang et al. 2017, Table 1",
                       statement="MLP 1x512 fits random CIFAR-10 labels; test stays at chance")
    def test_fit_random(claim, scale, device):
        s = SETTINGS[scale]
        result = ...                          # train with library calls, on `device`
        claim.sizes(train=f"{s['n_train']:,} of 50,000 images", test="1,000 of 10,000 images")
        claim.seeds(0)
        claim.at_least("train_acc", result.train_acc, 0.99, paper=0.9934)
        claim.in_interval("test_acc", result.test_acc, 0.07, 0.13, paper=0.1061)
        claim.figure("zhang_fig1a", "Loss vs steps", "line", "step", "loss",
                     {"random labels": {"x": result.steps, "y": result.losses}})
        claim.conclude()                      # writes the record, then asserts every check

What the plugin does:

* **Scales.** Every test marked ``@pytest.mark.claim(ID, source=..., statement=...)`` is
  parametrized over ``scale``: ``test_x[smoke]`` (CPU, real-data subset, gates CI) and
  ``test_x[full]`` (the paper's setting), which carries the ``gpu`` mark, and ``distributed``
  too when the claim mark says ``distributed=True``. ``pytest claims/ -m gpu`` selects exactly the
  full cases, ``-m "not gpu"`` the smoke ones; ``--scale smoke|full|both`` (env
  ``GENBENCH_SCALE``, default ``both``) deselects the other scale. A claim whose arithmetic is
  the same at both scales still gets both cases (the full one simply repeats it on the GPU box).
* **Selecting a claim.** The claim id is a keyword of its tests: ``-k fit_random`` or
  ``-k Z.T1.fit_random`` (any substring of the id, case-insensitive).
* **Devices.** A ``gpu`` test skips when CUDA is missing, with a reason that says so.
  ``GENBENCH_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``) overrides the device of both scales;
  ``GENBENCH_DEVICE=cpu`` forces full scale on the CPU. The ``device`` fixture gives the
  ``torch.device`` to use: smoke → cpu, full → cuda, unless overridden.
* **Records.** The ``claim`` fixture is a :class:`ClaimRecorder`. Its checks (``at_least``,
  ``at_most``, ``within``, ``in_interval``, ``holds``) record and return whether they passed;
  they never raise. ``claim.conclude()`` appends one :class:`~genbench.ledger.ClaimRecord` to
  the ledger and then raises ``AssertionError`` listing each failed check (measured vs bound).
  A test that raises before ``conclude()`` still leaves a record, with verdict ``error`` and the
  exception text; a test that forgets ``conclude()`` errors in teardown.
* **Cases.** A claim may be parametrized further, one case per row of the paper's table
  (``@pytest.mark.parametrize("model", [...])``): ``test_fit[mlp_1x512-smoke]``. The case id is
  the test's parametrize id without the scale part (``mlp_1x512``); it is the record's ``case``,
  and ``-k mlp_1x512`` selects that row at both scales.
* **Not reproduced.** A claim that does not reproduce keeps its honest bound and states the
  known gap in its mark, ``xfail={"smoke": "...", "full[inception_small_nobn]": "..."}``: a key
  is a scale (every case at that scale) or ``scale[CASE]`` (that case only). The plugin marks
  exactly those cases ``xfail(strict=True, reason=...)`` at collection, so a case that starts
  to pass fails the run. The reason names the setting and the failing check, not numbers: the
  record's verdict stays ``fail`` and it carries the measured values and the reason. This is the
  only way to state a known gap: an ``xfail`` mark written on a claim test by hand is a
  collection error. ``paper="Table 1: ..."`` (optional) is the paper's numbers as text, copied
  into the record.
* **Ledger.** ``--ledger PATH`` (env ``GENBENCH_LEDGER``; default ``results/ledger.jsonl`` under
  the rootdir). Appends are atomic, so pytest-xdist workers share one ledger safely.
'''

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest

from genbench import ledger as lg
from genbench.ledger import Check, ClaimRecord, Ledger

# live progress, time-left estimates, the verdict table, --threads (genbench/live.py)
pytest_plugins = ["genbench.live"]

SCALE_CHOICES = ("smoke", "full", "both")
CLAIM_ID = re.compile(r"^[A-Z]+\.[A-Za-z0-9]+\.[A-Za-z0-9_]+$")
XFAIL_KEY = re.compile(r"^(smoke|full)(?:\[([^\[\]]+)\])?$")
CLAIM_KWARGS = ("source", "statement", "paper", "xfail", "distributed")
NO_GPU_REASON = ("full scale needs a CUDA GPU; none found (torch.cuda.is_available() is False); "
                 "set GENBENCH_DEVICE=cpu to force it on the CPU")
_call_report = pytest.StashKey[pytest.TestReport]()
_ledger_path = pytest.StashKey[Path]()


# ----------------------------------------------------------------------------- pytest hooks

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("genbench", "genbench claims")
    group.addoption("--scale", choices=SCALE_CHOICES, default=None,
                    help="run claims at this scale only (default: $GENBENCH_SCALE or both)")
    group.addoption("--ledger", default=None,
                    help="results ledger to append claim records to "
                         "(default: $GENBENCH_LEDGER or <rootdir>/results/ledger.jsonl)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "claim(id, *, source, statement, paper=None, xfail=None, distributed=False): a "
                   "paper's claim, run at smoke and full scale and recorded to the genbench ledger; "
                   "xfail={'smoke': reason, 'smoke[CASE]': reason} states known gaps (strict)")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one unless "
                                       "GENBENCH_DEVICE=cpu)")
    config.addinivalue_line("markers", "distributed: needs several GPUs; run under torchrun")
    scale = config.getoption("--scale") or os.environ.get("GENBENCH_SCALE") or "both"
    if scale not in SCALE_CHOICES:
        raise pytest.UsageError(f"GENBENCH_SCALE={scale!r} is not one of {SCALE_CHOICES}")
    config.option.scale = scale
    option = config.getoption("--ledger")
    config.stash[_ledger_path] = Path(option) if option else lg.default_ledger_path(config.rootpath)


@pytest.hookimpl(trylast=True)  # after @parametrize: ids read test_x[mlp_1x512-smoke]
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claim")
    if marker is None:
        return
    claim_id, distributed = _claim_args(marker, metafunc.definition.nodeid)[0], \
        bool(marker.kwargs.get("distributed", False))
    if "scale" not in metafunc.fixturenames:
        pytest.fail(f"{metafunc.definition.nodeid}: claim {claim_id} must use the `claim` "
                    f"fixture (def test_...(claim, scale, device))", pytrace=False)
    full_marks = [pytest.mark.gpu] + ([pytest.mark.distributed] if distributed else [])
    metafunc.parametrize("scale", [pytest.param("smoke", id="smoke"),
                                   pytest.param("full", id="full", marks=full_marks)])
    _check_known_gap_cases(metafunc, marker)


def _check_known_gap_cases(metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
    """A ``scale[CASE]`` key of the mark's ``xfail`` must name one of the claim's cases (all
    of them, whatever -k or node ids select later), or it is a collection error."""
    calls = getattr(metafunc, "_calls", None)  # pytest's parametrized calls (no public API)
    if not calls:
        return
    where = metafunc.definition.nodeid
    gaps = _claim_args(marker, where)[4]
    cases = {_strip_scale(call.id, call.params.get("scale")) for call in calls}
    for key in gaps:
        case = XFAIL_KEY.match(key).group(2)  # type: ignore[union-attr]  # validated
        if case is not None and case not in cases:
            known = sorted(c for c in cases if c is not None)
            pytest.fail(f"{where}: xfail key {key!r} names no case of this claim; its cases are "
                        f"{known}", pytrace=False)


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so every case of a claim is seen
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _apply_known_gaps(items)
    keep, drop = [], []
    wanted = config.option.scale
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker is not None:
            item.extra_keyword_matches.add(str(marker.args[0]))
        scale = getattr(getattr(item, "callspec", None), "params", {}).get("scale")
        (drop if marker is not None and wanted != "both" and scale != wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def case_id(item: pytest.Item) -> str | None:
    """The claim case of ``item``: its parametrize id without the scale part
    (``test_fit[mlp_1x512-smoke]`` -> ``mlp_1x512``), None for a claim with one case."""
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else _strip_scale(callspec.id, callspec.params.get("scale"))


def _strip_scale(call_id: str, scale: Any) -> str | None:
    parts = call_id.split("-")
    if scale in parts:
        del parts[len(parts) - 1 - parts[::-1].index(scale)]
    return "-".join(parts) or None


def _apply_known_gaps(items: list[pytest.Item]) -> None:
    """Turn each claim mark's ``xfail={...}`` into strict xfail marks on exactly those cases;
    a hand-written xfail on a claim test is a collection error (a key naming no case is one
    too, raised while parametrizing: :func:`_check_known_gap_cases`)."""
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker is None:
            continue
        where = item.nodeid.split("[")[0]
        gaps = _claim_args(marker, where)[4]
        if item.get_closest_marker("xfail") is not None:
            raise pytest.UsageError(
                f"{item.nodeid}: a claim states a known gap in its mark, "
                f"@pytest.mark.claim(..., xfail={{'smoke': 'reason'}}), not with pytest.mark.xfail")
        scale = getattr(getattr(item, "callspec", None), "params", {}).get("scale")
        reason = gaps.get(f"{scale}[{case_id(item)}]", gaps.get(str(scale)))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not os.environ.get("GENBENCH_DEVICE"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip(NO_GPU_REASON)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_call_report] = report
    return report


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture
def scale(request: pytest.FixtureRequest) -> str:
    """``"smoke"`` or ``"full"``: set by the plugin on ``@pytest.mark.claim`` tests."""
    if not hasattr(request, "param"):
        pytest.fail("the `scale` fixture exists only for tests marked @pytest.mark.claim(...)",
                    pytrace=False)
    return request.param


@pytest.fixture
def device(scale: str) -> Any:
    """The ``torch.device`` a claim runs on (see the module docstring for the rule)."""
    return resolve_device(scale)


@pytest.fixture
def claim(request: pytest.FixtureRequest, scale: str, device: Any) -> Iterator[ClaimRecorder]:
    """The recorder of a ``@pytest.mark.claim`` test; see :class:`ClaimRecorder`."""
    marker = request.node.get_closest_marker("claim")
    if marker is None:
        pytest.fail("the `claim` fixture needs @pytest.mark.claim(ID, source=..., statement=...)",
                    pytrace=False)
    claim_id, source, statement, paper, _ = _claim_args(marker, request.node.nodeid)
    recorder = ClaimRecorder(claim_id, source, statement, scale, device,
                             ledger=Ledger(request.config.stash[_ledger_path]),
                             node_id=request.node.nodeid, rootdir=request.config.rootpath,
                             xfail=lambda: _xfail_reason(request.node),
                             case=case_id(request.node), paper=paper)
    yield recorder
    if recorder.concluded:
        return
    report = request.node.stash.get(_call_report, None)
    if report is None or (report.skipped and not hasattr(report, "wasxfail")):
        return  # setup failed or the test skipped itself: nothing was measured
    if report.failed or report.skipped:  # raised (an xfail test that raises is 'skipped')
        recorder.write("error", error=_crash_text(report))
    else:  # the test body finished without conclude()
        recorder.write("error", error="the test finished without calling claim.conclude()")
        pytest.fail(f"claim {claim_id} [{scale}] never called claim.conclude(); its checks were "
                    f"recorded with verdict 'error'", pytrace=False)


def _xfail_reason(node: pytest.Item) -> str | None:
    """The reason of the node's xfail mark (set from the claim mark's ``xfail=``)."""
    mark = node.get_closest_marker("xfail")
    return None if mark is None else str(mark.kwargs.get("reason", "xfail"))


# ----------------------------------------------------------------------------- the recorder

class ClaimRecorder:
    """Collects a claim's checks, notes and figures, then writes one ledger record.

    Checks record and return ``bool``; only :meth:`conclude` asserts. ``tol`` on a check is how
    far its measured value may move between runs before ``genbench compare`` flags it; it
    defaults to the check's own tolerance (``within``: the tolerance; ``in_interval``: half the
    interval; ``at_least``/``at_most``: the distance between ``paper`` and the bound).
    """

    def __init__(self, claim_id: str, source: str, statement: str, scale: str, device: Any, *,
                 ledger: Ledger, node_id: str = "", rootdir: Path | None = None,
                 xfail: str | Callable[[], str | None] | None = None, case: str | None = None,
                 paper: str | None = None) -> None:
        self.id, self.source, self.statement = claim_id, source, statement
        self.case, self.paper = case, paper
        self.scale, self.device = scale, device
        self.concluded = False
        self._ledger, self._node_id, self._rootdir, self._xfail = ledger, node_id, rootdir, xfail
        self._checks: list[Check] = []
        self._notes: dict[str, Any] = {}
        self._sizes: dict[str, str] = {}
        self._seeds: tuple[Any, ...] = ()
        self._figures: list[dict[str, Any]] = []
        self._start = time.perf_counter()

    # checks ------------------------------------------------------------------
    def at_least(self, name: str, measured: Any, bound: float, *, paper: Any = None,
                 tol: float | None = None) -> bool:
        """``measured >= bound``."""
        return self._add(lg.at_least(name, measured, bound, paper=paper, tol=tol))

    def at_most(self, name: str, measured: Any, bound: float, *, paper: Any = None,
                tol: float | None = None) -> bool:
        """``measured <= bound``."""
        return self._add(lg.at_most(name, measured, bound, paper=paper, tol=tol))

    def within(self, name: str, measured: Any, target: float, *, abs_tol: float | None = None,
               rel_tol: float | None = None, paper: Any = None, tol: float | None = None) -> bool:
        """``|measured - target| <= max(abs_tol, rel_tol*|target|)``; paper defaults to target."""
        return self._add(lg.within(name, measured, target, abs_tol=abs_tol, rel_tol=rel_tol,
                                   paper=paper, tol=tol))

    def in_interval(self, name: str, measured: Any, lo: float, hi: float, *, paper: Any = None,
                    tol: float | None = None) -> bool:
        """``lo <= measured <= hi``."""
        return self._add(lg.in_interval(name, measured, lo, hi, paper=paper, tol=tol))

    def holds(self, name: str, condition: Any, *, measured: Any = None, expected: Any = None,
              paper: Any = None) -> bool:
        """``condition`` is true; ``measured``/``expected`` document what was compared."""
        return self._add(lg.holds(name, condition, measured=measured, expected=expected,
                                  paper=paper))

    # context -----------------------------------------------------------------
    def note(self, key: str, value: Any) -> None:
        """An extra measured value (any JSON-able value; arrays become lists)."""
        self._notes[key] = value.tolist() if hasattr(value, "tolist") else value

    def sizes(self, **sizes: str) -> None:
        """The data actually used, in words: ``train="2,000 of 50,000 images"``."""
        self._sizes.update({k: str(v) for k, v in sizes.items()})

    def seeds(self, *seeds: Any) -> None:
        """The seeds of every random draw of the claim."""
        self._seeds = tuple(seeds)

    def figure(self, key: str, title: str, kind: str, xlabel: str, ylabel: str,
               series: Mapping[str, Mapping[str, Any]], *, logx: bool = False,
               logy: bool = False, references: Mapping[str, float] | None = None) -> None:
        """Data of a paper figure the report re-draws (see :func:`genbench.ledger.figure_spec`);
        ``references={"paper": 0.1061, "chance": 0.1}`` are drawn as dashed lines."""
        self._figures.append(lg.figure_spec(key, title, kind, xlabel, ylabel, series,
                                            logx=logx, logy=logy, references=references))

    # the end -----------------------------------------------------------------
    def conclude(self) -> None:
        """Write the record, then assert that every check passed."""
        if not self._checks:
            raise AssertionError(f"claim {self.id} [{self.scale}] concluded without any check")
        failed = [c for c in self._checks if not c.passed]
        self.write("fail" if failed else "pass")
        if failed:
            lines = "\n".join(f"  - {c.describe()}" for c in failed)
            raise AssertionError(f"claim {self.id} [{self.scale}]: {len(failed)} of "
                                 f"{len(self._checks)} checks failed:\n{lines}")

    def write(self, verdict: str, error: str | None = None) -> ClaimRecord:
        """Append the record with this verdict (used by :meth:`conclude` and the fixture)."""
        self.concluded = True
        record = ClaimRecord(
            id=self.id, case=self.case, paper=self.paper, source=self.source,
            statement=self.statement, scale=self.scale,
            verdict=verdict, checks=tuple(self._checks), notes=dict(self._notes),
            sizes=dict(self._sizes), seeds=self._seeds, device=device_name(self.device),
            seconds=round(time.perf_counter() - self._start, 3), versions=versions(),
            commit=git_commit(str(self._rootdir)) if self._rootdir else None,
            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            figures=tuple(self._figures), node_id=self._node_id, error=error,
            xfail=self._xfail() if callable(self._xfail) else self._xfail)
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 alone writes
            self._ledger.append(record)
        return record

    def _add(self, check: Check) -> bool:
        if any(c.name == check.name for c in self._checks):
            raise ValueError(f"claim {self.id}: check {check.name!r} recorded twice")
        self._checks.append(check)
        return check.passed


# ----------------------------------------------------------------------------- environment

def resolve_device(scale: str) -> Any:
    """``$GENBENCH_DEVICE`` if set; else cpu for smoke, cuda (when present) for full; a bare
    cuda is ``cuda:LOCAL_RANK`` (one GPU per torchrun rank). Decided by
    ``genbench.training.runtime.Runtime.from_env``, the one place that maps ranks to devices."""
    from genbench.errors import ConfigError
    from genbench.training.runtime import Runtime

    try:
        return Runtime.from_env(scale).device
    except ConfigError as err:
        raise pytest.UsageError(str(err)) from None


def device_name(device: Any) -> str:
    """``cpu (2 threads)`` or the CUDA device's marketing name."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    return str(device)


@functools.cache
def versions() -> dict[str, str]:
    """Versions of the libraries a measurement depends on."""
    found = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "genbench"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@functools.cache
def git_commit(rootdir: str) -> str | None:
    """HEAD of the checkout at ``rootdir`` (``-dirty`` if it has changes); None if not git."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", rootdir, *args], capture_output=True, text=True,
                              timeout=10, check=False)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def _claim_args(marker: pytest.Mark, where: str
                ) -> tuple[str, str, str, str | None, dict[str, str]]:
    """(id, source, statement, paper, xfail) from a claim mark, or a collection error."""
    usage = ('@pytest.mark.claim("Z.T1.fit_random", source="Zhang et al. 2017, Table 1", '
             'statement="...")')
    if len(marker.args) != 1 or not CLAIM_ID.match(str(marker.args[0])):
        pytest.fail(f"{where}: the claim mark needs one id like Z.T1.fit_random (as in "
                    f"CLAIMS.md), got {marker.args!r}; usage: {usage}", pytrace=False)
    unknown = set(marker.kwargs) - set(CLAIM_KWARGS)
    missing = {"source", "statement"} - set(marker.kwargs)
    if unknown or missing:
        pytest.fail(f"{where}: claim {marker.args[0]}: missing {sorted(missing)}, unknown "
                    f"{sorted(unknown)}; usage: {usage}", pytrace=False)
    gaps = marker.kwargs.get("xfail") or {}
    if not isinstance(gaps, Mapping) or not all(
            isinstance(k, str) and XFAIL_KEY.match(k) and isinstance(v, str) and v.strip()
            for k, v in gaps.items()):
        pytest.fail(f"{where}: claim {marker.args[0]}: xfail must map 'smoke', 'full', "
                    f"'smoke[CASE]' or 'full[CASE]' to a non-empty reason (CASE: the parametrize "
                    f"id without the scale), got {gaps!r}", pytrace=False)
    paper = marker.kwargs.get("paper")
    return (marker.args[0], str(marker.kwargs["source"]), str(marker.kwargs["statement"]),
            None if paper is None else str(paper), dict(gaps))


def _crash_text(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)[-2000:]
