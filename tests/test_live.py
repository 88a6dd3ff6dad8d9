"""Live claim progress (genbench/live.py): which claim case runs, its epochs despite pytest's
capture, the time left from the baseline's seconds, the verdict table, an interrupted run."""

import signal
import subprocess
import sys
import textwrap
import time

from genbench import ledger as lg
from genbench.ledger import ClaimRecord, Ledger

pytest_plugins = ["pytester"]

CLAIMS = textwrap.dedent('''
    import os
    import time
    import pytest
    from genbench import progress

    @pytest.mark.claim("T.T1.rows", source="Paper T, Table 1", statement="rows fit")
    @pytest.mark.parametrize("row", ["mlp", "cnn"])
    def test_rows(claim, row):
        for epoch in range(1, 4):
            progress.emit(progress.Epoch(row, epoch, 3, 2, 2, 1.0 / epoch, 0.3 * epoch, epoch))
        claim.at_least("train_acc", 0.9, 0.8, paper=1.0)
        claim.conclude()

    @pytest.mark.claim("T.T2.slow", source="Paper T, Table 2", statement="slow")
    def test_slow(claim):
        if os.environ.get("SLOW"):
            time.sleep(60)
        claim.holds("fine", True)
        claim.conclude()
''')


def baseline(path, seconds):
    for (claim_id, case), s in seconds.items():
        Ledger(path).append(ClaimRecord(id=claim_id, source="s", statement="s", scale="smoke",
                                        verdict="pass", seconds=s, case=case))


def test_progress_estimates_and_verdict_table(pytester):
    pytester.makepyfile(test_claims=CLAIMS)
    baseline(pytester.path / "results" / "baseline" / "smoke.jsonl",
             {("T.T1.rows", "mlp"): 40.0, ("T.T1.rows", "cnn"): 80.0})
    ledger = pytester.path / "ledger.jsonl"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--ledger={ledger}",
                                           "--scale=smoke", "--claim-progress=lines")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "genbench: 3 claim cases, about 2 min 00 s by the baseline's recorded times (+ 1 without one)",
        "[[]1/3] T.T1.rows[[]mlp] (smoke) started: about 40 s; about * left in all",
        "  T.T1.rows[[]mlp]: mlp x2 epoch 1/3, train acc 0.300, loss 1;*",
        "  T.T1.rows[[]mlp]: mlp x2 epoch 3/3, train acc 0.900, loss 0.3333;*",
        "  T.T1.rows[[]mlp] (smoke): pass in * (baseline 40 s)",
        "[[]2/3] T.T1.rows[[]cnn] (smoke) started: about 1 min 20 s; about 1 min * left in all",
        "[[]3/3] T.T2.slow (smoke) started: no recorded time*",
        "*genbench: claim verdicts (this run)*",
        "claim*scale*verdict*seconds*check*measured*paper*needs",
        "T.T1.rows[[]mlp]*smoke*pass*train_acc*0.9*1*>= 0.8",
        "T.T1.rows[[]cnn]*smoke*pass*train_acc*0.9*1*>= 0.8",
        "T.T2.slow*smoke*pass*fine*True*-*true",
        f"genbench: 3 records appended to {ledger}; `genbench report --ledger {ledger}` renders them.",
    ])
    assert len(lg.read_ledger(ledger)) == 3


def test_progress_off_and_threads(pytester):
    pytester.makepyfile(test_claims=CLAIMS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--scale=smoke",
                                           f"--ledger={pytester.path / 'l.jsonl'}",
                                           "--claim-progress=off", "--threads=1")
    result.assert_outcomes(passed=3)
    assert "started" not in result.stdout.str() and "claim verdicts" not in result.stdout.str()
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--threads=0")
    assert bad.ret == 4 and "--threads / GENBENCH_THREADS must be a positive" in bad.stderr.str()


def test_sigterm_ends_like_ctrl_c_and_names_the_records(pytester):
    pytester.makepyfile(test_claims=CLAIMS)
    ledger = pytester.path / "ledger.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--scale=smoke",
         f"--ledger={ledger}", "--claim-progress=lines"], cwd=pytester.path,
        env={**__import__("os").environ, "SLOW": "1"}, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (ledger.exists() and len(ledger.read_text().splitlines()) == 2):
        time.sleep(0.2)
    time.sleep(1.0)  # into the slow claim
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 2, out
    assert f"genbench: interrupted after 2 claim records; they are in {ledger}" in out
    assert f"`genbench report --ledger {ledger}` renders them" in out
    assert "Traceback" not in out
    assert [r.case for r in lg.read_ledger(ledger)] == ["mlp", "cnn"]
