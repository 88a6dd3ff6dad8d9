"""The resumable campaign (genbench.campaign) on tiny fake claims in a temporary project.

The fake claims declare their cost with ``PLAN_WORK`` (so the order is known) and the plan's
rates are fixed (no calibration), so these tests take seconds. The interrupted-campaign test
kills the campaign process with SIGKILL while a case is running, then resumes it, and checks
that every case has exactly one record.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import genbench
from genbench.campaign import (accuracy, accuracy_table, fingerprint, journal_path, recorded,
                               run_campaign)
from genbench.plan import Rates

RATES = Rates(float64=1e9, float32=1e9, mlp=1e9, conv=1e9)

FAKE = '''
import os, time
from pathlib import Path

import pytest

from genbench.plan import Part, Work

GATE = Path(__file__).parent.parent / "gate"


def _work(flop):
    return lambda case, scale: Work((Part("fake", "float32", flop),))


# cheapest first: T.F.a[x1] (1e9), T.F.a[x2] (2e9), T.F.slow (5e9)
PLAN_WORK = {"T.F.a": lambda case, scale: _work(1e9 if case == "x1" else 2e9)(case, scale),
             "T.F.slow": _work(5e9)}


@pytest.mark.claim("T.F.a", source="fake", statement="fake claim with two cases")
@pytest.mark.parametrize("x", ["x1", "x2"])
def test_a(claim, scale, device, x):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()


@pytest.mark.claim("T.F.slow", source="fake", statement="waits for the gate file")
def test_slow(claim, scale, device):
    Path(os.environ["FAKE_STARTED"]).write_text("started")
    while not GATE.exists():
        time.sleep(0.1)
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()
'''

SCRIPT = '''
import sys
from genbench.campaign import run_campaign
from genbench.plan import Rates
rates = Rates(float64=1e9, float32=1e9, mlp=1e9, conv=1e9)
run_campaign("full", ledger=sys.argv[1], device="cpu", rootdir=sys.argv[2], rates=rates)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout with its own copy of the genbench package: the fingerprint hashes the code
    the cases import, which other engineers' edits of this tree must not change mid-test."""
    shutil.copytree(Path(genbench.__file__).parent, tmp_path / "genbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_fake.py").write_text(FAKE)
    return tmp_path


def _records(ledger: Path) -> list[dict]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the campaign")
        time.sleep(0.2)


def test_order_cheapest_first_and_rerun_skips(project: Path, monkeypatch, capsys) -> None:
    (project / "gate").write_text("open")
    monkeypatch.setenv("FAKE_STARTED", str(project / "started"))
    ledger = project / "ledger.jsonl"
    out = run_campaign("full", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    assert [o.status for o in out] == ["recorded"] * 3
    assert [r["node_id"].split("::")[1] for r in _records(ledger)] == [
        "test_a[x1-full]", "test_a[x2-full]", "test_slow[full]"]
    assert {(r["id"], r["verdict"]) for r in _records(ledger)} == {("T.F.a", "pass"),
                                                                   ("T.F.slow", "pass")}
    journal = [json.loads(line) for line in journal_path(ledger).read_text().splitlines()]
    assert [e["event"] for e in journal] == ["start", "end"] * 3
    assert all(e["peak_rss"] > 0 for e in journal if e["event"] == "end")

    measured = accuracy(ledger)  # genbench plan --measured: the plan's estimate vs the run
    assert [a.estimate_s for a in measured] == [21.0, 22.0, 25.0]
    assert all(a.wall_s > 0 and a.ratio == a.wall_s / a.estimate_s for a in measured)
    assert accuracy_table(ledger).count("| pass |") == 3

    again = run_campaign("full", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    assert [o.status for o in again] == ["skipped"] * 3
    assert len(_records(ledger)) == 3
    assert "0 to go" in capsys.readouterr().out


def test_code_change_makes_the_cases_due_again(project: Path, monkeypatch) -> None:
    (project / "gate").write_text("open")
    monkeypatch.setenv("FAKE_STARTED", str(project / "started"))
    ledger = project / "ledger.jsonl"
    module = "claims/test_fake.py"
    before = fingerprint(module, "full", "cpu", project)
    run_campaign("full", "T.F.a", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    assert len(_records(ledger)) == 2
    with open(project / module, "a") as f:
        f.write("\n# a settings change\n")
    after = fingerprint(module, "full", "cpu", project)
    assert after != before
    assert fingerprint(module, "smoke", "cpu", project) != after  # the scale is part of it
    monkeypatch.setenv("GENBENCH_RUNS", "20")  # a study's R set from outside the module
    assert fingerprint(module, "full", "cpu", project) != after
    monkeypatch.delenv("GENBENCH_RUNS")
    assert fingerprint(module, "full", "cpu", project) == after
    out = run_campaign("full", "T.F.a", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    assert [o.status for o in out] == ["recorded", "recorded"]
    assert len(_records(ledger)) == 4


def test_killed_campaign_resumes_and_records_each_case_once(project: Path) -> None:
    ledger = project / "ledger.jsonl"
    started = project / "started"
    env = dict(os.environ, FAKE_STARTED=str(started))
    campaign = subprocess.Popen([sys.executable, "-c", SCRIPT, str(ledger), str(project)],
                                env=env, cwd=project, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: started.exists() or campaign.poll() is not None)
        assert campaign.poll() is None, "the campaign ended before its slow case started"
        assert len(_records(ledger)) == 2  # the two cheap cases finished, the slow one is running
        os.kill(campaign.pid, signal.SIGKILL)  # no clean-up: the hardest stop
        campaign.wait()
    finally:
        if campaign.poll() is None:
            campaign.kill()
    (project / "gate").write_text("open")  # a surviving orphan would now finish and record
    time.sleep(2.0)
    assert len(_records(ledger)) == 2, "the case in progress died with its campaign"

    out = run_campaign("full", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    assert sorted(o.status for o in out) == ["recorded", "skipped", "skipped"]
    nodes = [r["node_id"] for r in _records(ledger)]
    assert len(nodes) == len(set(nodes)) == 3
    prints = {n: fingerprint("claims/test_fake.py", "full", "cpu", project) for n in nodes}
    assert set(recorded(ledger, journal_path(ledger), prints)) == set(nodes)


def test_budget_and_memory_keep_cases_out(project: Path, monkeypatch) -> None:
    (project / "gate").write_text("open")
    monkeypatch.setenv("FAKE_STARTED", str(project / "started"))
    ledger = project / "ledger.jsonl"
    # per-case overhead (20 s) + 1-5 s of work: a 22 s budget admits only the cheapest case
    out = run_campaign("full", ledger=ledger, device="cpu", rootdir=project, rates=RATES,
                       budget="22s")
    assert [o.status for o in out] == ["recorded", "not run", "not run"]
    assert "budget left" in out[1].detail
    out = run_campaign("full", ledger=ledger, device="cpu", rootdir=project, rates=RATES,
                       memory="100MiB")
    assert {o.status for o in out} == {"skipped", "not run"}
    assert all("memory" in o.detail for o in out if o.status == "not run")


def test_a_cuda_campaign_estimates_by_the_gpu_column(project: Path) -> None:
    from genbench import plan

    out = run_campaign("full", ledger=project / "ledger.jsonl", device="cuda", rootdir=project,
                       rates=RATES, dry_run=True)
    gpu = {o.node_id.split("::")[-1]: o.estimate for o in out}
    rate = plan.GPU.rate["float32"]
    assert gpu == pytest.approx({"test_a[x1-full]": plan.CASE_OVERHEAD_S + 1e9 / rate,
                                 "test_a[x2-full]": plan.CASE_OVERHEAD_S + 2e9 / rate,
                                 "test_slow[full]": plan.CASE_OVERHEAD_S + 5e9 / rate})


def test_a_second_campaign_on_the_same_ledger_is_refused(project: Path) -> None:
    import fcntl

    from genbench.errors import GenbenchError

    ledger = project / "ledger.jsonl"
    with open(project / "ledger.campaign.jsonl.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a campaign is running
        with pytest.raises(GenbenchError, match="another campaign is running"):
            run_campaign("full", ledger=ledger, device="cpu", rootdir=project, rates=RATES)


SHARED = '''
import pytest

from genbench.plan import Part, Work


def _study(own):  # 50 s of shared runs (at the tests' 1 GFLOP/s) + the case's own part
    return lambda case, scale: Work((Part("the study", "float32", 50e9, shared="study S"),
                                     Part("own", "float32", own)))


# cold (20 s overhead each): first 71 s, alone 75 s, second 80 s; second after first: 30 s
PLAN_WORK = {"T.S.first": _study(1e9), "T.S.second": _study(10e9),
             "T.S.alone": lambda case, scale: Work((Part("alone", "float32", 55e9),))}


@pytest.mark.claim("T.S.first", source="fake", statement="reads the shared study")
def test_first(claim, scale, device):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()


@pytest.mark.claim("T.S.second", source="fake", statement="reads the shared study too")
def test_second(claim, scale, device):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()


@pytest.mark.claim("T.S.alone", source="fake", statement="shares nothing")
def test_alone(claim, scale, device):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()
'''


def _starts(ledger: Path) -> list[dict]:
    return [json.loads(line) for line in journal_path(ledger).read_text().splitlines()
            if json.loads(line)["event"] == "start"]


def test_shared_runs_are_paid_once(project: Path, monkeypatch) -> None:
    """Once a case that trains a study is recorded, another case of the same study costs only
    its own part: it goes next (cheapest first by what is left) and fits a budget its cold
    estimate would not; the children share one run cache, which the journal names."""
    (project / "claims" / "test_shared.py").write_text(SHARED)
    monkeypatch.setenv("GENBENCH_RUN_CACHE", str(project / "runs"))
    ledger = project / "ledger.jsonl"
    out = run_campaign("full", "T.S", ledger=ledger, device="cpu", rootdir=project, rates=RATES,
                       budget=75.0)
    assert [(o.node_id.split("::")[1], o.status) for o in out] == [
        ("test_first[full]", "recorded"), ("test_second[full]", "recorded"),
        ("test_alone[full]", "not run")]
    first, second = _starts(ledger)
    assert (first["estimate_s"], first["estimate_cold_s"]) == (71.0, 71.0)
    assert (second["estimate_s"], second["estimate_cold_s"]) == (30.0, 80.0)
    assert first["run_cache"] == second["run_cache"] == str(project / "runs")


def test_a_resumed_campaign_knows_the_shared_runs_are_trained(project: Path, monkeypatch) -> None:
    (project / "claims" / "test_shared.py").write_text(SHARED)
    monkeypatch.setenv("GENBENCH_RUN_CACHE", str(project / "runs"))
    ledger = project / "ledger.jsonl"
    run_campaign("full", "T.S.first", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    out = run_campaign("full", "T.S", ledger=ledger, device="cpu", rootdir=project, rates=RATES,
                       budget=75.0)
    assert [(o.node_id.split("::")[1], o.status) for o in out] == [
        ("test_first[full]", "skipped"), ("test_second[full]", "recorded"),
        ("test_alone[full]", "not run")]
    assert _starts(ledger)[-1]["estimate_s"] == 30.0


def test_runs_paid_by_a_case_outside_the_selection_count(project: Path, monkeypatch) -> None:
    """Figure 1c then ``-k F1b``: the second campaign selects only the case that reads the
    shared runs, and still knows they are trained (the first case's journal line names them)."""
    (project / "claims" / "test_shared.py").write_text(SHARED)
    monkeypatch.setenv("GENBENCH_RUN_CACHE", str(project / "runs"))
    ledger = project / "ledger.jsonl"
    run_campaign("full", "T.S.first", ledger=ledger, device="cpu", rootdir=project, rates=RATES)
    assert _starts(ledger)[-1]["shared"] == ["study S"]
    out = run_campaign("full", "T.S.second", ledger=ledger, device="cpu", rootdir=project,
                       rates=RATES, budget=75.0)
    assert [o.status for o in out] == ["recorded"]
    assert _starts(ledger)[-1]["estimate_s"] == 30.0
    # another run cache holds none of those runs: the same selection is estimated cold
    monkeypatch.setenv("GENBENCH_RUN_CACHE", str(project / "other-runs"))
    out = run_campaign("full", "T.S.second", ledger=project / "l2.jsonl", device="cpu",
                       rootdir=project, rates=RATES, dry_run=True)
    assert out[0].estimate == 80.0


def test_campaign_run_cache_defaults_to_the_user_cache(monkeypatch, tmp_path: Path) -> None:
    from genbench.campaign import run_cache_dir

    monkeypatch.delenv("GENBENCH_RUN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert run_cache_dir() == tmp_path / "genbench" / "runs"
    monkeypatch.setenv("GENBENCH_RUN_CACHE", str(tmp_path / "mine"))
    assert run_cache_dir() == tmp_path / "mine"
