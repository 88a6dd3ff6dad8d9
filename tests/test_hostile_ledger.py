"""The reproducibility gate and the ledger under hostile and careless input (issue 15, items 2,
3 and 10; issue 17 item 1): the gate never passes on a baseline it did not read whole, every
bad line is named by file, line and field, and the lock never hangs silently."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genbench import ledger as lg
from genbench.cli import main
from genbench.ledger import ClaimRecord, Ledger, LedgerError, read_ledger, read_ledger_strict

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baseline" / "smoke.jsonl"


def record(claim_id="X.T1.acc", **changes) -> ClaimRecord:
    base = dict(id=claim_id, source="s", statement="s", scale="smoke", verdict="pass",
                checks=(lg.within("acc", 0.95, 0.95, abs_tol=0.02), lg.holds("fitted", True)),
                versions={"torch": "2.14.1", "genbench": "0.1.0"})
    base.update(changes)
    return ClaimRecord(**base)


def line(claim_id="X.T1.acc", **changes) -> str:
    return record(claim_id, **changes).to_json()


def ledger_file(path: Path, *lines: str, end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end)
    return path


def edited(edit) -> str:
    data = json.loads(line())
    edit(data)
    return json.dumps(data)


def run_compare(base: Path, new: Path, capsys) -> tuple[int, str, str]:
    status = main(["compare", str(base), str(new)])
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture
def good(tmp_path) -> Path:
    return ledger_file(tmp_path / "good.jsonl", line(), line("X.T2.b"))


def test_committed_baseline_reads_strictly():
    records = read_ledger_strict(BASELINE)
    assert len(records) >= 10 and all(r.verdict in lg.VERDICTS for r in records)


def test_records_with_and_without_case_are_accepted(tmp_path):
    without = json.loads(line())
    without.pop("case", None)
    path = ledger_file(tmp_path / "l.jsonl", json.dumps(without), line(case="mlp_1x512"))
    assert [r.case for r in read_ledger_strict(path)] == [None, "mlp_1x512"]


# --- item 2: a strict baseline ---------------------------------------------------------------

@pytest.mark.parametrize("content, expect", [
    ("", "holds no records"),
    ("\n\n  \n", "holds no records"),
    ("{not json\n", "line 1: not valid JSON"),
    (None, "line 2: not valid JSON"),  # one good line, then garbage, then a good line
    (b"\xff\xfe{}\n", "line 1: the line is not UTF-8"),
])
def test_empty_or_unreadable_baseline_is_exit_2_naming_file_and_line(tmp_path, good, capsys,
                                                                     content, expect):
    base = tmp_path / "base.jsonl"
    if content is None:
        ledger_file(base, line(), "garbage", line("X.T2.b"))
    elif isinstance(content, bytes):
        base.write_bytes(content)
    else:
        base.write_text(content)
    status, out, err = run_compare(base, good, capsys)
    assert status == 2 and "reproduces" not in out
    assert expect in err and str(base) in err and "Traceback" not in err


def test_missing_or_folder_baseline_is_exit_2(tmp_path, good, capsys):
    assert run_compare(tmp_path / "absent.jsonl", good, capsys)[0] == 2
    (tmp_path / "dir.jsonl").mkdir()
    status, _, err = run_compare(tmp_path / "dir.jsonl", good, capsys)
    assert status == 2 and "cannot be read" in err


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(verdict=True), "'verdict'"),
    (lambda d: d.update(seconds="fast"), "'seconds'"),
    (lambda d: d.update(checks={"acc": 1}), "'checks'"),
    (lambda d: d.update(case=3), "'case'"),
    (lambda d: d.pop("id"), "'id' is missing"),
    (lambda d: d["checks"][0].update(measured=[0.95]), "'checks[0].measured'"),
    (lambda d: d["checks"][0].update(passed="yes"), "'checks[0].passed'"),
    (lambda d: d["checks"][1].update(tol="0.1"), "'checks[1].tol'"),
    (lambda d: d["checks"][0].pop("passed"), "'checks[0].passed' is missing"),
    (lambda d: d["checks"].append(7), "'checks[2]'"),
    (lambda d: d.update(figures=[[1, 2]]), "'figures[0]'"),
])
def test_wrong_field_type_in_baseline_names_the_field(tmp_path, good, capsys, edit, field):
    base = ledger_file(tmp_path / "base.jsonl", line(), edited(edit))
    status, _, err = run_compare(base, good, capsys)
    assert status == 2 and "line 2" in err and field in err


@pytest.mark.parametrize("tol", [math.inf, -math.inf, math.nan, -0.5])
def test_tolerance_must_be_finite_and_non_negative(tmp_path, good, capsys, tol):
    def set_tol(d):
        d["checks"][0]["tol"] = tol
    base = ledger_file(tmp_path / "base.jsonl", edited(set_tol))
    status, _, err = run_compare(base, good, capsys)
    assert status == 2 and "'checks[0].tol'" in err and "finite and >= 0" in err


# --- item 3: lines that are JSON but not records, and nesting that exhausts recursion ---------

@pytest.mark.parametrize("bad", ["[1, 2, 3]", "42", '"text"', "null", "[" * 200_000 + "]" * 200_000])
def test_non_object_or_deeply_nested_line(tmp_path, good, capsys, bad):
    base = ledger_file(tmp_path / "base.jsonl", line(), bad)
    status, _, err = run_compare(base, good, capsys)
    assert status == 2 and "line 2" in err and "Traceback" not in err
    assert ("nests too deeply" in err) if bad.startswith("[[") else ("JSON object" in err)
    with pytest.warns(lg.LedgerWarning, match=":2: skipped"):  # the report's reader draws the rest
        assert [r.id for r in read_ledger(base)] == ["X.T1.acc"]


def test_torn_last_line_is_tolerated_in_new_only(tmp_path, good, capsys):
    torn = ledger_file(tmp_path / "torn.jsonl", line(), line("X.T2.b"), line()[:40], end="")
    status, out, _ = run_compare(good, torn, capsys)
    assert status == 0 and "torn last line" in out
    status, _, err = run_compare(torn, good, capsys)  # as a baseline: an error
    assert status == 2 and "line 3" in err
    middle = ledger_file(tmp_path / "middle.jsonl", line(), line()[:40], line("X.T2.b"))
    status, _, err = run_compare(good, middle, capsys)  # torn in the middle of NEW: an error
    assert status == 2 and "line 2" in err


# --- issue 17 item 1: different library versions are said -----------------------------------

def test_compare_says_when_versions_differ(tmp_path, good, capsys):
    newer = ledger_file(tmp_path / "new.jsonl",
                        line(versions={"torch": "2.15.0", "genbench": "0.1.0"}),
                        line("X.T2.b", versions={"torch": "2.15.0", "genbench": "0.1.0"}))
    status, out, _ = run_compare(good, newer, capsys)
    assert status == 0 and "different torch versions: 2.14.1 (baseline) vs 2.15.0 (new)" in out
    assert "genbench versions" not in out
    status, out, _ = run_compare(good, good, capsys)
    assert "versions" not in out


# --- item 10: the ledger lock waits with a timeout and names its holder ----------------------

def test_lock_times_out_naming_the_holder(tmp_path):
    path = tmp_path / "ledger.jsonl"
    Ledger(path).append(record())
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(LedgerError) as err:
            Ledger(path, lock_timeout=0.5).append(record("X.T9.z"))
        assert time.monotonic() - start < 10
        assert f"process {holder.pid}" in str(err.value) and "GENBENCH_LEDGER_LOCK_TIMEOUT" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    Ledger(path, lock_timeout=5).append(record("X.T9.z"))  # free again: the append goes through
    assert [r.id for r in read_ledger_strict(path)] == ["X.T1.acc", "X.T9.z"]


def test_non_utf8_ledger_path_is_named_not_a_traceback(tmp_path, good, capsys):
    import os

    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/base-\xff.jsonl"))
    odd.write_text("")
    status, _, err = run_compare(odd, good, capsys)
    assert status == 2 and "base-\\xff.jsonl" in err and "holds no records" in err
