"""The ledger: record round trip, checks, atomic appends under real parallel writers, torn lines."""

import dataclasses
import math
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbench import ledger as lg
from genbench.errors import ConfigError, GenbenchError
from genbench.ledger import ClaimRecord, Ledger, LedgerWarning, read_ledger


def record(claim_id="X.T1.thing", scale="smoke", verdict="pass", **fields):
    return ClaimRecord(id=claim_id, source="paper, Table 1", statement="it holds", scale=scale,
                       verdict=verdict, **fields)


def test_checks_decide_and_describe():
    assert lg.at_least("acc", 0.995, 0.99, paper=0.9934).passed
    assert not lg.at_least("acc", 0.93, 0.99).passed
    assert lg.at_most("err", 0.1, 0.2).passed
    assert lg.in_interval("acc", 0.1, 0.07, 0.13).tol == pytest.approx(0.03)
    near = lg.within("p", 0.57925, 0.5793, abs_tol=1e-4)
    assert near.passed and near.paper == 0.5793 and near.tol == 1e-4
    assert not lg.within("p", 1.2, 1.0, rel_tol=0.1).passed
    assert not lg.at_least("acc", math.nan, 0.0).passed
    assert lg.holds("ok", True).measured is True
    failed = lg.at_least("train_acc", 0.93, 0.99, paper=0.9934)
    assert failed.describe() == "train_acc: measured 0.93 (paper 0.9934), needs >= 0.99"
    assert failed.tol == pytest.approx(0.0034)  # one-sided: slack between paper and bound


def test_checks_reject_bad_arguments():
    with pytest.raises(ConfigError, match="abs_tol or rel_tol"):
        lg.within("p", 1.0, 1.0)
    with pytest.raises(ConfigError, match="lo <= hi"):
        lg.in_interval("p", 1.0, 2.0, 1.0)
    with pytest.raises(ConfigError, match="measured must be a number"):
        lg.at_least("p", "high", 1.0)
    with pytest.raises(ConfigError, match="kind must be one of"):
        lg.figure_spec("k", "t", "pie", "x", "y", {"a": {"values": [1]}})
    with pytest.raises(ConfigError, match="x and y differ"):
        lg.figure_spec("k", "t", "line", "x", "y", {"a": {"x": [1, 2], "y": [1]}})
    with pytest.raises(ConfigError, match="verdict"):
        record(verdict="maybe")


@settings(max_examples=30, deadline=None)
@given(measured=st.floats(allow_nan=False), bound=st.floats(-1e6, 1e6),
       notes=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
def test_record_json_round_trip(measured, bound, notes):
    original = record(checks=(lg.at_least("m", measured, bound, paper=1.0),
                              lg.holds("h", measured > bound)),
                      notes=notes, sizes={"train": "2,000 of 50,000 images"}, seeds=(0, 1),
                      figures=(lg.figure_spec("f", "t", "hist", "x", "y", {"a": {"values": [1.0]}}),),
                      commit=None, error="boom\nline two")
    line = original.to_json()
    assert "\n" not in line
    assert ClaimRecord.from_json(line) == original


def test_from_dict_ignores_unknown_keys():
    data = record().to_dict() | {"from_the_future": 1}
    assert ClaimRecord.from_dict(data) == record()


def test_append_and_read_in_order(tmp_path):
    ledger = Ledger(tmp_path / "deep" / "ledger.jsonl")
    for scale in ("smoke", "full", "smoke"):
        ledger.append(record(scale=scale, verdict="pass" if scale == "full" else "fail"))
    records = ledger.read()
    assert [r.scale for r in records] == ["smoke", "full", "smoke"]
    assert list(lg.latest(records)) == [("X.T1.thing", None, "smoke"),
                                        ("X.T1.thing", None, "full")]


def test_cases_are_kept_apart_and_old_records_read_without_one():
    rows = [dataclasses.replace(record(), case=c) for c in ("mlp_1x512", "alexnet_small")]
    assert list(lg.latest(rows)) == [("X.T1.thing", "alexnet_small", "smoke"),
                                     ("X.T1.thing", "mlp_1x512", "smoke")]
    old = {k: v for k, v in record().to_dict().items() if k not in ("case", "paper")}
    assert ClaimRecord.from_dict(old).case is None


def test_missing_ledger_is_a_clear_error(tmp_path):
    with pytest.raises(GenbenchError, match="no ledger at"):
        read_ledger(tmp_path / "none.jsonl")


def test_torn_last_line_is_skipped_with_a_warning_and_the_next_append_starts_clean(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(record(claim_id="X.T1.a"))
    whole = record(claim_id="X.T1.b").to_json()
    with open(path, "a") as f:  # a writer killed half-way through its line
        f.write(whole[: len(whole) // 2])
    with pytest.warns(LedgerWarning, match="ledger.jsonl:2"):
        assert [r.id for r in read_ledger(path)] == ["X.T1.a"]
    ledger.append(record(claim_id="X.T1.c"))
    with pytest.warns(LedgerWarning):
        assert [r.id for r in read_ledger(path)] == ["X.T1.a", "X.T1.c"]


WRITER = textwrap.dedent("""
    import sys
    from genbench.ledger import ClaimRecord, Ledger
    path, worker = sys.argv[1], int(sys.argv[2])
    ledger = Ledger(path)
    for i in range(50):
        ledger.append(ClaimRecord(id=f"P.W{worker}.r{i}", source="s", statement="s",
                                  scale="smoke", verdict="pass", notes={"pad": "x" * 20000}))
""")


def test_parallel_writers_lose_no_record(tmp_path):
    """4 real processes x 50 records of ~20 kB each (far above PIPE_BUF) into one ledger."""
    path = tmp_path / "ledger.jsonl"
    workers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)])
               for w in range(4)]
    assert [w.wait(timeout=60) for w in workers] == [0] * 4
    ids = [r.id for r in read_ledger(path)]  # any torn or interleaved line would warn -> error
    assert sorted(ids) == sorted(f"P.W{w}.r{i}" for w in range(4) for i in range(50))
    for w in range(4):  # each writer's records stay in its own order
        assert [i for i in ids if i.startswith(f"P.W{w}.")] == [f"P.W{w}.r{i}" for i in range(50)]
