"""The genbench pytest plugin, end to end through ``pytester`` (in-process runs)."""

import hypothesis  # noqa: F401  # imported before the pytester runs, whose sys.modules
import pytest  # snapshot would otherwise make each run import hypothesis and torch anew
import torch

from genbench.ledger import read_ledger
from genbench.pytest_plugin import NO_GPU_REASON

pytest_plugins = "pytester"

CLAIMS = '''
import pytest

@pytest.mark.claim("T.T1.fit_random", source="Test paper, Table 1", statement="fits")
def test_fit(claim, scale, device):
    claim.sizes(train="10 of 10 images")
    claim.seeds(0)
    claim.at_least("acc", 1.0, 0.99, paper=0.9934)
    claim.conclude()

@pytest.mark.claim("T.T2.big", source="Test paper, Table 2", statement="big", distributed=True)
def test_big(claim):
    claim.holds("ok", True)
    claim.conclude()

def test_plain():
    pass
'''


@pytest.fixture
def run(pytester, monkeypatch):
    """Run pytest on one test file with a fresh ledger; returns (result, ledger path)."""
    monkeypatch.delenv("GENBENCH_SCALE", raising=False)
    monkeypatch.delenv("GENBENCH_DEVICE", raising=False)
    monkeypatch.delenv("GENBENCH_LEDGER", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ledger = pytester.path / "out" / "ledger.jsonl"

    def go(source, *args):
        pytester.makepyfile(test_claims=source)
        return pytester.runpytest_inprocess("--strict-markers", f"--ledger={ledger}", *args), ledger
    return go


def collected(result):
    return sorted(line.split("::")[1] for line in result.outlines if "::" in line)


def test_markers_are_registered(pytester):
    result = pytester.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.claim(id, *, source, statement, paper=None, "
                                 "xfail=None, distributed=False)*",
                                 "@pytest.mark.gpu:*", "@pytest.mark.distributed:*"])


def test_each_claim_runs_at_two_scales_and_full_needs_a_gpu(run):
    result, ledger = run(CLAIMS, "-rs")
    result.assert_outcomes(passed=3, skipped=2)
    result.stdout.fnmatch_lines([f"SKIPPED *{NO_GPU_REASON}"])
    assert {(r.id, r.scale, r.verdict) for r in read_ledger(ledger)} == {
        ("T.T1.fit_random", "smoke", "pass"), ("T.T2.big", "smoke", "pass")}


@pytest.mark.parametrize("args, expected", [
    ((), ["test_big[full]", "test_big[smoke]", "test_fit[full]", "test_fit[smoke]", "test_plain"]),
    (("-m", "gpu"), ["test_big[full]", "test_fit[full]"]),
    (("-m", "distributed"), ["test_big[full]"]),
    (("-m", "not gpu"), ["test_big[smoke]", "test_fit[smoke]", "test_plain"]),
    (("--scale", "smoke"), ["test_big[smoke]", "test_fit[smoke]", "test_plain"]),
    (("--scale", "full"), ["test_big[full]", "test_fit[full]", "test_plain"]),
    (("-k", "fit_random"), ["test_fit[full]", "test_fit[smoke]"]),
    (("-k", "T.T2.big and smoke"), ["test_big[smoke]"]),
])
def test_selection(run, args, expected):
    result, _ = run(CLAIMS, "--collect-only", "-q", *args)
    assert collected(result) == expected


def test_scale_from_environment(run, monkeypatch):
    monkeypatch.setenv("GENBENCH_SCALE", "full")
    result, _ = run(CLAIMS, "--collect-only", "-q")
    assert collected(result) == ["test_big[full]", "test_fit[full]", "test_plain"]


def test_genbench_device_cpu_forces_full_scale(run, monkeypatch):
    monkeypatch.setenv("GENBENCH_DEVICE", "cpu")
    result, ledger = run(CLAIMS, "-m", "gpu")
    result.assert_outcomes(passed=2)
    (fit,) = [r for r in read_ledger(ledger) if r.id == "T.T1.fit_random"]
    assert (fit.scale, fit.verdict, fit.seeds, fit.sizes) == ("full", "pass", (0,),
                                                              {"train": "10 of 10 images"})
    assert fit.device.startswith("cpu (") and fit.versions["torch"] and fit.timestamp
    assert fit.node_id == "test_claims.py::test_fit[full]"


def test_failed_check_is_recorded_then_asserted(run):
    result, ledger = run('''
import pytest

@pytest.mark.claim("T.T1.acc", source="s", statement="s")
def test_acc(claim):
    claim.at_least("acc", 0.5, 0.99, paper=0.9934)
    claim.within("loss", 0.1, 0.1, abs_tol=1e-3)
    claim.conclude()
''', "--scale=smoke")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*claim T.T1.acc ?smoke?: 1 of 2 checks failed:*",
                                 "*- acc: measured 0.5 (paper 0.9934), needs >= 0.99*"])
    (record,) = read_ledger(ledger)
    assert record.verdict == "fail"
    assert [(c.name, c.measured, c.passed) for c in record.checks] == [("acc", 0.5, False),
                                                                        ("loss", 0.1, True)]


def test_exception_before_conclude_leaves_an_error_record(run):
    result, ledger = run('''
import pytest

@pytest.mark.claim("T.T1.boom", source="s", statement="s")
def test_boom(claim):
    claim.at_least("acc", 1.0, 0.5)
    1 / 0
''', "--scale=smoke")
    result.assert_outcomes(failed=1)
    (record,) = read_ledger(ledger)
    assert record.verdict == "error" and "ZeroDivisionError" in record.error
    assert [c.name for c in record.checks] == ["acc"]


def test_skip_inside_a_claim_writes_nothing_and_xfail_that_raises_is_an_error(run):
    result, ledger = run('''
import pytest

@pytest.mark.claim("T.T1.skipped", source="s", statement="s")
def test_skipped(claim):
    pytest.skip("dataset not present")

@pytest.mark.claim("T.T1.raises", source="s", statement="s", xfail={"smoke": "known"})
def test_raises(claim):
    raise RuntimeError("diverged")
''', "--scale=smoke")
    result.assert_outcomes(skipped=1, xfailed=1)
    (record,) = read_ledger(ledger)
    assert (record.id, record.verdict, record.xfail) == ("T.T1.raises", "error", "known")
    assert "RuntimeError: diverged" in record.error


def test_forgotten_conclude_is_an_error(run):
    result, ledger = run('''
import pytest

@pytest.mark.claim("T.T1.lazy", source="s", statement="s")
def test_lazy(claim):
    claim.at_least("acc", 1.0, 0.5)
''', "--scale=smoke")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*claim T.T1.lazy ?smoke? never called claim.conclude()*"])
    assert read_ledger(ledger)[0].verdict == "error"


def test_strict_xfail_claim_keeps_verdict_fail(run):
    result, ledger = run('''
import pytest

@pytest.mark.claim("T.T1.nope", source="s", statement="s", xfail={"smoke": "acc below 0.99"})
def test_nope(claim):
    claim.at_least("acc", 0.5, 0.99)
    claim.conclude()
''', "--scale=smoke")
    result.assert_outcomes(xfailed=1)
    (record,) = read_ledger(ledger)
    assert (record.verdict, record.xfail) == ("fail", "acc below 0.99")
    assert record.checks[0].measured == 0.5  # the number is in the record, not in the reason


ROWS = '''
import pytest

@pytest.mark.claim("T.T1.rows", source="Test paper, Table 1", statement="fits",
                   paper="Table 1: 99.34 / 100.0",
                   xfail={"smoke[mlp_3x512]": "mlp_3x512 at smoke: acc below 0.99"})
@pytest.mark.parametrize("model", ["mlp_1x512", "mlp_3x512"])
def test_rows(claim, scale, device, model):
    claim.at_least("acc", 0.5 if model == "mlp_3x512" else 1.0, 0.99)
    claim.conclude()
'''


def test_one_case_per_row_with_a_known_gap_on_one_case_only(run):
    result, ledger = run(ROWS, "--scale=smoke", "-rx")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["XFAIL *test_rows?mlp_3x512-smoke? - mlp_3x512 at smoke*"])
    records = {r.case: r for r in read_ledger(ledger)}
    assert {c: (r.verdict, r.xfail) for c, r in records.items()} == {
        "mlp_1x512": ("pass", None), "mlp_3x512": ("fail", "mlp_3x512 at smoke: acc below 0.99")}
    assert records["mlp_1x512"].paper == "Table 1: 99.34 / 100.0"
    assert records["mlp_1x512"].node_id == "test_claims.py::test_rows[mlp_1x512-smoke]"


def test_known_gap_is_strict_so_a_case_that_passes_fails_the_run(run):
    result, ledger = run(ROWS.replace("0.5 if", "1.0 if"), "--scale=smoke")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*mlp_3x512 at smoke*"])
    assert {r.verdict for r in read_ledger(ledger)} == {"pass"}


def test_a_scale_key_covers_every_case_of_that_scale(run, monkeypatch):
    monkeypatch.setenv("GENBENCH_DEVICE", "cpu")
    result, ledger = run(ROWS.replace('"smoke[mlp_3x512]"', '"full"'), "-rx")
    # full: mlp_3x512 fails as stated, mlp_1x512 passes and so XPASSes (strict: a failure);
    # smoke has no known gap: mlp_1x512 passes, mlp_3x512 fails
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    assert {(r.case, r.scale): bool(r.xfail) for r in read_ledger(ledger)} == {
        ("mlp_1x512", "smoke"): False, ("mlp_3x512", "smoke"): False,
        ("mlp_1x512", "full"): True, ("mlp_3x512", "full"): True}


def test_a_known_gap_of_a_case_not_selected_is_still_valid(run):
    result, ledger = run(ROWS, "test_claims.py::test_rows[mlp_1x512-smoke]")
    result.assert_outcomes(passed=1)
    assert [r.case for r in read_ledger(ledger)] == ["mlp_1x512"]


@pytest.mark.parametrize("args, expected", [
    (("-k", "mlp_1x512"), ["test_rows[mlp_1x512-full]", "test_rows[mlp_1x512-smoke]"]),
    (("-k", "mlp_3x512 and smoke"), ["test_rows[mlp_3x512-smoke]"]),
])
def test_a_row_is_selected_by_its_case_id_at_any_scale(run, args, expected):
    result, _ = run(ROWS, "--collect-only", "-q", *args)
    assert collected(result) == expected


@pytest.mark.parametrize("mark, message", [
    ('xfail={"smoke[mlp_2x512]": "r"}', "names no case of this claim; its cases are*"),
    ('xfail={"medium": "r"}', "xfail must map 'smoke', 'full'*"),
    ('xfail={"smoke": ""}', "xfail must map 'smoke', 'full'*"),
])
def test_malformed_known_gap_fails_collection(run, mark, message):
    result, _ = run(ROWS.replace('xfail={"smoke[mlp_3x512]": "mlp_3x512 at smoke: acc below 0.99"}',
                                 mark))
    assert result.ret != 0
    pytest.LineMatcher(result.stdout.lines + result.stderr.lines).fnmatch_lines([f"*{message}*"])


def test_a_hand_written_xfail_on_a_claim_is_refused(run):
    result, _ = run('''
import pytest

@pytest.mark.xfail(strict=True, reason="known")
@pytest.mark.claim("T.T1.x", source="s", statement="s")
def test_x(claim):
    claim.conclude()
''')
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*states a known gap in its mark*"])


def test_ledger_path_from_environment(run, monkeypatch, pytester):
    path = pytester.path / "env.jsonl"
    monkeypatch.setenv("GENBENCH_LEDGER", str(path))
    pytester.makepyfile(test_claims=CLAIMS)
    pytester.runpytest_inprocess("--scale=smoke").assert_outcomes(passed=3)
    assert len(read_ledger(path)) == 2


@pytest.mark.parametrize("mark, message", [
    ('"not an id", source="s", statement="s"', "needs one id like Z.T1.fit_random"),
    ('"T.T1.x", source="s"', "missing ?'statement'?"),
])
def test_malformed_claim_mark_fails_collection(run, mark, message):
    result, _ = run(f'''
import pytest

@pytest.mark.claim({mark})
def test_x(claim):
    claim.conclude()
''')
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*{message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")
