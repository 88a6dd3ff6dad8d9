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


def table_rows(text):
    """The verdict table's data rows (the first table of report.md)."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| claim |"))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_report_opens_with_the_verdict_table_and_links_every_figure(ledger, tmp_path):
    out = tmp_path / "report"
    md, page, *pngs = write_report(ledger, out)
    assert (md.name, page.name, len(pngs)) == ("report.md", "report.html", 3)
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.parent == out for p in pngs)
    text = md.read_text()
    assert text.index("| claim | case | statement | paper | measured (needs) | n |") < \
        text.index("## Claims")
    rows = table_rows(text)
    assert [r[0].split("]")[0] for r in rows] == [
        "[C.S5.consensus_beats_single", "[E.S3.distance_from_init", "[Z.T1.fit_random"]
    # a strict xfail reads as a known gap, with its reason in the claim's section
    assert rows[1][-1] == "known gap" and rows[2][-1] == "pass" and "boom" not in text
    assert "Known gap (strict xfail): measured 0.4" in text
    assert "1 known gap" in text and "fail" not in text.split("\n")[2].lower()
    assert rows[0][3] == "train_acc: 0.9934" and rows[0][4] == "train_acc: 0.999 (>= 0.99)"
    assert rows[0][5] == "train: 2,000 of 50,000 images" and rows[0][6] == "full"
    html_text = page.read_text()
    assert html_text.count("data:image/png;base64,") == 3
    assert base64.b64encode(pngs[0].read_bytes()).decode() in html_text
    assert html_text.index("<table>") < html_text.index("<figure>")
    assert "href='#r-Z.T1.fit_random--smoke'" in html_text and "id='r-Z.T1.fit_random--smoke'" in html_text
    assert "[1 fig]" in html_text


def test_cells_stay_short_and_cases_get_their_own_rows(tmp_path):
    path = tmp_path / "ledger.jsonl"
    checks = tuple(lg.at_least(f"model {i} train_acc", 0.9, 0.99, paper=1.0) for i in range(12))
    for case in ("mlp_1x512", "alexnet_small"):
        Ledger(path).append(ClaimRecord(
            id="Z.T1.fit_random", source="Zhang et al. 2017, Table 1", statement="x " * 300,
            scale="smoke", verdict="fail", checks=checks, case=case, paper="Table 1: " + "9 " * 80,
            sizes={f"k{i}": "2,000 of 50,000 images" for i in range(6)}))
    md = write_report(path, tmp_path / "out")[0].read_text()
    rows = table_rows(md)
    assert [r[1] for r in rows] == ["alexnet_small", "mlp_1x512"]
    assert all(len(cell) <= 160 for r in rows for cell in r)
    assert "+10 more" in rows[0][4] and rows[0][-1] == "FAIL" and "<br>" not in md
    assert md.count("| model 11 train_acc | 0.9 | 1 | >= 0.99 | ✗ |") == 2  # all in the section


def test_mixed_runs_show_each_records_commit_and_time(ledger, tmp_path):
    Ledger(ledger).append(record("Z.T1.true_labels", commit="abc123", timestamp="2026-12-01T10:00:00+00:00"))
    md = write_report(ledger, tmp_path / "out")[0].read_text()
    assert "mix 2 commits" in md and "| commit, time |" in md
    assert "abc123, 2026-12-01T10:00:00+00:00" in md


def test_hostile_figures_and_lines_draw_the_rest(tmp_path):
    """Issue 15, item 3: NaN/inf in a figure, two figure keys with one file name, a ledger line
    that is JSON but not an object: the report says so and draws the rest."""
    path = tmp_path / "ledger.jsonl"
    bad = lg.figure_spec("fig/1", "NaN and inf", "line", "x", "y",
                         {"a": {"x": [0, 1, 2, 3], "y": [1.0, float("nan"), float("inf"), 2.0]}},
                         logy=True)
    same = lg.figure_spec("fig 1", "same slug", "hist", "v", "n",
                          {"a": {"values": [1.0, float("inf"), 2.0, float("-inf")]}})
    empty = lg.figure_spec("none", "nothing finite", "scatter", "x", "y",
                           {"a": {"x": [float("nan")], "y": [1.0]}})
    Ledger(path).append(record("Z.F1a.input_randomization", figures=(bad, same, empty)))
    with open(path, "a") as f:
        f.write("[1, 2, 3]\n")
    with pytest.warns(LedgerWarning, match=":2:"):
        md, page, *pngs = write_report(path, tmp_path / "out")
    assert len(pngs) == 3 and len({p.name for p in pngs}) == 3
    text = md.read_text()
    assert "2 non-finite values left out" in text and "1 non-finite value left out" in text
    assert "Skipped ledger line: " in text and ":2: skipped an unreadable ledger line" in text


def test_cli_report_names_skipped_lines_in_one_line_each(ledger, tmp_path, capsys):
    with open(ledger, "a") as f:
        f.write("null\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["report", "--ledger", str(ledger), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("genbench report: ") for line in err)
    assert ":5: skipped" in err[0] and ":6: skipped" in err[1]


def test_reference_lines_are_kept_and_drawn(tmp_path):
    spec = lg.figure_spec("acc", "Test accuracy", "line", "epoch", "accuracy",
                          {"random labels": {"x": [1, 2], "y": [0.1, 0.12]}},
                          references={"paper": 0.1061, "chance": np.float64(0.1)})
    assert spec["references"] == {"paper": 0.1061, "chance": 0.1}
    path = tmp_path / "ledger.jsonl"
    Ledger(path).append(record("Z.T1.fit_random", figures=(spec,)))
    (png,) = write_report(path, tmp_path / "out")[2:]
    assert png.read_bytes().startswith(PNG_MAGIC)


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


def test_histogram_bins_resolve_each_group_when_the_groups_lie_far_apart():
    from genbench.report import HIST_MAX_BINS, hist_edges

    rng = np.random.default_rng(0)
    normal, extreme = rng.normal(116, 3, 20), rng.normal(215, 4, 20)
    edges = hist_edges([normal, extreme])
    for group in (normal, extreme):
        assert np.count_nonzero(np.histogram(group, edges)[0]) >= 3  # its spread shows
    assert len(edges) - 1 <= HIST_MAX_BINS
    assert len(hist_edges([[1.0, 1.0], [1.0]])) == 11  # no spread anywhere: ten bins
    assert len(hist_edges([[0.0], [1e9, 1e9 + 1]])) - 1 == HIST_MAX_BINS  # capped
