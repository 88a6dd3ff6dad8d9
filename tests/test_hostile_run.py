"""`genbench run` under careless destinations (issue 15 item 10): the ledger, the report
folder and the run cache are checked before any claim runs, and a run where every case skips
says so and exits 0."""

from __future__ import annotations

import textwrap

import pytest

from genbench import runner
from genbench.cli import main


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A folder with a claims/ directory; pytest must not be launched unless a test says so."""
    (tmp_path / "claims").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENBENCH_LEDGER", raising=False)
    monkeypatch.delenv("GENBENCH_RUN_CACHE", raising=False)
    monkeypatch.setattr(runner, "_run_pytest",
                        lambda *a, **k: pytest.fail("a claim ran before the check"))
    (tmp_path / "a_file").write_text("a file, not a folder")
    return tmp_path


@pytest.mark.parametrize("args, expect", [
    (["--ledger", "a_file/ledger.jsonl"], "--ledger's folder"),
    (["--ledger", "."], "is not a file"),
    (["--out", "a_file"], "--out (the report folder)"),
    (["--out", "a_file/report"], "--out (the report folder)"),
])
def test_bad_ledger_or_out_stops_before_any_claim(checkout, capsys, args, expect):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert expect in err and "nothing was run" in err


def test_unwritable_run_cache_stops_before_any_claim(checkout, capsys, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUN_CACHE", str(checkout / "a_file" / "cache"))
    assert main(["run", "--ledger", str(checkout / "l.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "GENBENCH_RUN_CACHE" in err and str(checkout / "a_file" / "cache") in err


def test_full_scale_run_where_every_case_skips_says_so_and_exits_0(tmp_path, monkeypatch, capsys):
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_big.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.gpu
        @pytest.mark.claim("T.T1.big", source="s", statement="needs a machine we lack")
        def test_big(claim):
            pytest.skip("no CUDA GPU here")
    '''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENBENCH_LEDGER", raising=False)
    monkeypatch.delenv("GENBENCH_RUN_CACHE", raising=False)
    status = runner.run_claims("full", out="rep", extra=["-q", "-p", "no:cacheprovider"])
    assert status == 0
    out = capsys.readouterr().out
    assert "every selected claim case skipped at scale full" in out
    assert not (tmp_path / "rep" / "report.md").exists()
