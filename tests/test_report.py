"""`genbench report` and `genbench run`: the ledger rendered as Markdown, HTML and PNG figures."""

import base64
import textwrap

import numpy as np
import pytest

from genbench import ledger as lg
from genbench.cli import main
from genbench.errors import GenbenchError
from genbench.ledger import ClaimRecord, Ledger, LedgerWarning
from genbench.report import write_report
from genbench.runner import run_claims

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def zhang_fig1a():
    steps = np.arange(0, 2000, 50)
    series = {name: {"x": steps, "y": 2.3 * np.exp(-steps / tau) + 1e-3}
              for name, tau in (("true labels", 150), ("random labels", 600),
                                ("gaussian", 300))}
    return lg.figure_spec("zhang_fig1a", "Loss vs training steps", "line", "thousand steps",
                          "average loss", series, logy=True)


def distances():
    rng = np.random.default_rng(0)
    return lg.figure_spec("extreme_distance", "Distance from initialization", "hist",
                          "Euclidean distance", "runs",
                          {"normal": {"values": rng.normal(10, 1, 200)},
                           "extreme": {"values": rng.normal(16, 1.5, 200)}})


def coverage():
    t = np.linspace(0.1, 0.9, 9)
    return lg.figure_spec("consensus_tradeoff", "Accuracy vs coverage", "scatter", "coverage",
                          "accuracy", {"consensus": {"x": 1 - t / 3, "y": 0.9 + t / 10}})


def record(claim_id, verdict="pass", scale="smoke", **fields):
    return ClaimRecord(id=claim_id, source="Paper, Table 1", statement="s", scale=scale,
                       verdict=verdict, device="cpu (2 threads)", seconds=1.5,
                       checks=(lg.at_least("train_acc", 0.999, 0.99, paper=0.9934),),
                       sizes={"train": "2,000 of 50,000 images"}, **fields)


@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    for r in (record("Z.T1.fit_random", verdict="error", error="boom"),
              record("Z.T1.fit_random", figures=(zhang_fig1a(),)),  # the latest wins
              record("E.S3.distance_from_init", "fail", xfail="measured 0.4", figures=(distances(),)),
              record("C.S5.consensus_beats_single", scale="full", figures=(coverage(),))):
        Ledger(path).append(r)
    return path


def test_report_has_one_row_per_claim_and_scale_and_every_figure(ledger, tmp_path):
    out = tmp_path / "report"
    md, page, *pngs = write_report(ledger, out)
    assert (md.name, page.name, len(pngs)) == ("report.md", "report.html", 3)
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.parent == out for p in pngs)
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "claim |" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| C.S5.consensus_beats_single", "| E.S3.distance_from_init", "| Z.T1.fit_random"]
    assert "| fail (xfail) |" in rows[1] and "| pass |" in rows[2] and "boom" not in text
    assert "train_acc: 0.999" in rows[0] and "train: 2,000 of 50,000 images" in rows[0]
    html_text = page.read_text()
    embedded = html_text.count("data:image/png;base64,")
    assert embedded == 3 and base64.b64encode(pngs[0].read_bytes()).decode() in html_text


def test_torn_last_line_still_reports(ledger, tmp_path):
    with open(ledger, "a") as f:
        f.write('{"id": "Z.T1.true_lab')
    with pytest.warns(LedgerWarning):
        paths = write_report(ledger, tmp_path / "out")
    assert "Z.T1.fit_random" in paths[0].read_text()


def test_cli_report(ledger, tmp_path, capsys):
    assert main(["report", "--ledger", str(ledger), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("report.html")
    assert main(["report", "--ledger", str(tmp_path / "missing.jsonl")]) == 2
    assert "no ledger at" in capsys.readouterr().err


def test_run_needs_a_claims_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenbenchError, match="no claims/ directory"):
        run_claims()


def test_run_executes_the_claims_and_writes_the_report(tmp_path, monkeypatch, capsys):
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_tiny.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.claim("T.T1.tiny", source="s", statement="one is one")
        def test_tiny(claim):
            claim.holds("one", 1 == 1)
            claim.conclude()
    '''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENBENCH_LEDGER", raising=False)
    assert run_claims("smoke", keyword="tiny", out="rep", extra=["-q", "-p", "no:cacheprovider"]) == 0
    assert "report written to" in capsys.readouterr().out
    (record_,) = lg.read_ledger(tmp_path / "results" / "ledger.jsonl")
    assert (record_.id, record_.scale, record_.verdict) == ("T.T1.tiny", "smoke", "pass")
    assert "T.T1.tiny" in (tmp_path / "rep" / "report.md").read_text()
