"""`genbench compare`: the reproducibility gate between a baseline ledger and a new one."""

import dataclasses

import pytest

from genbench import ledger as lg
from genbench.cli import main
from genbench.compare import compare_records
from genbench.ledger import ClaimRecord, Ledger


def record(claim_id="X.T1.acc", verdict="pass", checks=None, scale="smoke"):
    checks = checks or (lg.within("acc", 0.95, 0.95, abs_tol=0.02),
                        lg.at_least("fit", 1.0, 0.99, paper=0.9934),
                        lg.holds("fitted", True))
    return ClaimRecord(id=claim_id, source="s", statement="s", scale=scale, verdict=verdict,
                       checks=checks)


def write(path, *records):
    for r in records:
        Ledger(path).append(r)
    return path


@pytest.fixture
def base(tmp_path):
    return write(tmp_path / "base.jsonl", record(), record("X.T2.other", scale="full"))


def test_identical_ledgers_pass(base, capsys):
    assert main(["compare", str(base), str(base)]) == 0
    assert "reproduces all 2 (claim, case, scale) records" in capsys.readouterr().out


def test_flipped_verdict_fails_with_a_table(base, tmp_path, capsys):
    new = write(tmp_path / "new.jsonl", record(), record("X.T2.other", verdict="fail", scale="full"))
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "1 difference(s)" in out
    assert any(line.split() == ["X.T2.other", "full", "verdict", "pass", "fail"]
               for line in out.splitlines())


def test_latest_record_of_new_ledger_wins(base, tmp_path):
    new = write(tmp_path / "new.jsonl", record(verdict="fail"), record(),
                record("X.T2.other", scale="full"))
    assert main(["compare", str(base), str(new)]) == 0


def drift(acc):
    return record(checks=(lg.within("acc", acc, 0.95, abs_tol=0.02),
                          lg.at_least("fit", 1.0, 0.99, paper=0.9934), lg.holds("fitted", True)))


@pytest.mark.parametrize("acc, differs", [(0.95, False), (0.96, False), (0.9699, False),
                                          (0.975, True)])
def test_measured_value_must_stay_within_the_check_tolerance(acc, differs):
    # 0.975 also fails the check itself, so the gate reports both the value and the flip
    found = compare_records([record()], [drift(acc)])
    assert any(d.what == "check acc measured" for d in found) == differs


def test_one_sided_check_uses_the_paper_slack_and_holds_compare_equal():
    moved = record(checks=(lg.within("acc", 0.95, 0.95, abs_tol=0.02),
                           lg.at_least("fit", 0.995, 0.99, paper=0.9934),  # moved 0.005 > 0.0034
                           lg.holds("fitted", True, measured="yes")))  # True -> "yes"
    found = compare_records([record()], [moved])
    assert {(d.what, d.allowed) for d in found} == {("check fit measured", "±0.0034"),
                                                   ("check fitted measured", "equal")}


def test_missing_claim_and_missing_or_extra_checks_are_differences():
    renamed = record(checks=(lg.within("accuracy", 0.95, 0.95, abs_tol=0.02),
                             lg.at_least("fit", 1.0, 0.99, paper=0.9934), lg.holds("fitted", True)))
    found = compare_records([record(), record("X.T9.gone")], [renamed, record("X.T8.new")])
    assert {(d.claim, d.what, d.new) for d in found} == {
        ("X.T1.acc", "check acc", "missing"), ("X.T1.acc", "check accuracy", "0.95"),
        ("X.T9.gone", "record", "missing")}


def test_doctored_measured_value_is_caught(base, tmp_path):
    doctored = tmp_path / "doctored.jsonl"
    text = base.read_text().replace('"measured": 0.95', '"measured": 0.9')
    doctored.write_text(text)
    assert main(["compare", str(base), str(doctored)]) == 1


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        record().verdict = "fail"


def test_cases_of_one_claim_are_compared_case_by_case(tmp_path):
    def row(case, verdict):
        return dataclasses.replace(record(verdict=verdict), case=case)
    base = write(tmp_path / "base.jsonl", row("mlp_1x512", "pass"), row("alexnet_small", "fail"))
    new = write(tmp_path / "new.jsonl", row("alexnet_small", "fail"), row("mlp_1x512", "fail"))
    (difference,) = compare_records(lg.read_ledger(base), lg.read_ledger(new))
    assert (difference.claim, difference.case, difference.what) == ("X.T1.acc", "mlp_1x512",
                                                                     "verdict")
    missing = write(tmp_path / "missing.jsonl", row("mlp_1x512", "pass"))
    (gone,) = compare_records(lg.read_ledger(base), lg.read_ledger(missing))
    assert (gone.case, gone.what, gone.new) == ("alexnet_small", "record", "missing")
