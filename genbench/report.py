"""The ledger rendered for people: a Markdown and a self-contained HTML report with figures.

One row per (claim, scale), the latest record winning, then every figure of those records
re-drawn with matplotlib from the measured curves (Zhang Fig. 1a/1b/1c, the extreme-overfitting
weight-distance histograms, the consensus accuracy/coverage curves, ...). The PNGs are written
next to the reports and embedded in the HTML as base64, so ``report.html`` can be mailed alone.
Figures are drawn through matplotlib's object API on an Agg canvas: no pyplot global state and
no display needed.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path
from typing import Any

from genbench.ledger import ClaimRecord, default_ledger_path, fmt, latest, read_ledger

COLUMNS = ("claim", "source", "paper", "measured", "tolerance", "verdict", "scale", "device",
           "seconds", "sizes")


def write_report(ledger: str | os.PathLike[str] | None = None,
                 out: str | os.PathLike[str] = "report") -> list[Path]:
    """Render the ledger into ``out/report.md``, ``out/report.html`` and one PNG per figure.

    ``ledger`` defaults to ``$GENBENCH_LEDGER`` or ``results/ledger.jsonl`` in the current
    directory. Returns the paths written, reports first.
    """
    records = list(latest(read_ledger(ledger or default_ledger_path())).values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = [(record, spec, draw_figure(record, spec, out)) for record in records
            for spec in record.figures]
    md, page = out / "report.md", out / "report.html"
    md.write_text(render_markdown(records, pngs))
    page.write_text(render_html(records, pngs))
    return [md, page] + [png for _, _, png in pngs]


def _row(record: ClaimRecord) -> dict[str, str]:
    """The table cells of one record; a claim's checks go one per line."""
    def lines(values: list[str]) -> list[str]:
        return values or ["-"]

    checks = record.checks
    verdict = record.verdict + (" (xfail)" if record.xfail else "")
    return {
        "claim": record.id + (f"[{record.case}]" if record.case else ""),
        "source": record.source,
        "paper": lines([f"{c.name}: {fmt(c.paper)}" for c in checks if c.paper is not None]),
        "measured": lines([f"{c.name}: {fmt(c.measured)}" + ("" if c.passed else " ✗")
                           for c in checks] + ([f"error: {record.error}"] if record.error else [])),
        "tolerance": lines([f"{c.name}: {c.bound}" for c in checks]),
        "verdict": verdict, "scale": record.scale, "device": record.device,
        "seconds": f"{record.seconds:.1f}",
        "sizes": lines([f"{k}: {v}" for k, v in record.sizes.items()]),
    }


def _cell_md(value: str | list[str]) -> str:
    text = "<br>".join(value) if isinstance(value, list) else value
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(records: list[ClaimRecord], pngs: list[tuple[ClaimRecord, dict, Path]]) -> str:
    lines = ["# genbench report", "", _summary(records), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell_md(cell) for cell in _row(r).values()) + " |"
              for r in records]
    lines += ["", "## Figures", ""] if pngs else []
    for record, spec, png in pngs:
        lines += [f"### {spec['title']}", "", f"{record.id} [{record.scale}], {record.verdict}", "",
                  f"![{spec['title']}]({png.name})", ""]
    return "\n".join(lines) + "\n"


def render_html(records: list[ClaimRecord], pngs: list[tuple[ClaimRecord, dict, Path]]) -> str:
    def cell(value: str | list[str]) -> str:
        items = value if isinstance(value, list) else [value]
        return "<br>".join(html.escape(item) for item in items)

    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    rows = "".join(f"<tr class='{html.escape(r.verdict)}'>"
                   + "".join(f"<td>{cell(v)}</td>" for v in _row(r).values()) + "</tr>"
                   for r in records)
    figures = "".join(
        f"<figure><img alt='{html.escape(spec['title'])}' src='data:image/png;base64,"
        f"{base64.b64encode(png.read_bytes()).decode()}'><figcaption>"
        f"{html.escape(spec['title'])}: {html.escape(record.id)} [{record.scale}], "
        f"{html.escape(record.verdict)}</figcaption></figure>"
        for record, spec, png in pngs)
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
             "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
             "tr.pass td:nth-child(6){color:#080}tr.fail td:nth-child(6),"
             "tr.error td:nth-child(6){color:#b00;font-weight:bold}img{max-width:640px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>genbench report</title>"
            f"<style>{style}</style></head><body><h1>genbench report</h1>"
            f"<p>{html.escape(_summary(records))}</p><table><tr>{head}</tr>{rows}</table>"
            + (f"<h2>Figures</h2>{figures}" if figures else "") + "</body></html>\n")


def _summary(records: list[ClaimRecord]) -> str:
    counts = {v: sum(r.verdict == v for r in records) for v in ("pass", "fail", "error")}
    return (f"{len(records)} claim records (latest per claim and scale): "
            + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")


def draw_figure(record: ClaimRecord, spec: dict[str, Any], out: Path) -> Path:
    """Draw one figure spec (see :func:`genbench.ledger.figure_spec`) to a PNG in ``out``."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    series: dict[str, dict[str, list[float]]] = spec["series"]
    values = [v for s in series.values() for v in s.get("values", ())]
    edges = np.histogram_bin_edges(values, bins=min(50, max(10, int(np.sqrt(len(values)))))) \
        if spec["kind"] == "hist" else None
    for label, data in series.items():
        if spec["kind"] == "hist":
            ax.hist(data["values"], bins=edges, alpha=0.55, label=label)
        elif spec["kind"] == "line":
            ax.plot(data["x"], data["y"], marker="o" if len(data["x"]) <= 30 else None, label=label)
        else:
            ax.scatter(data["x"], data["y"], s=12, label=label)
    ax.set(title=spec["title"], xlabel=spec["xlabel"], ylabel=spec["ylabel"])
    if spec.get("logx"):
        ax.set_xscale("log")
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle(f"{record.id} [{record.scale}] {record.verdict}, {record.device}",
                 fontsize=8, color="#555")
    case = f"-{_slug(record.case)}" if record.case else ""
    path = out / f"{_slug(record.id)}{case}-{_slug(spec['key'])}-{record.scale}.png"
    fig.savefig(path)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
