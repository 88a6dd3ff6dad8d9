"""The ledger rendered for people: a Markdown and a self-contained HTML report with figures.

What a researcher sends a colleague: the report opens with the verdict table, one row per
(claim, case, scale) with the latest record winning: the claim, its statement, the paper's value
beside the measured one (with the bound it had to meet), the data size, the scale, the device
and the seconds. A strict xfail reads as a *known gap* with its reason, not as a failure. Cells
stay short; each row links to its claim's section below, which holds every check, the notes on
sizes and seeds, the known-gap reason, the commit and time of the record, and the figures.

Figures are the papers' figures re-drawn from the measured curves with matplotlib's object API
on an Agg canvas (no pyplot state, no display). A figure may carry reference lines
(``references={"paper": 0.1061, "chance": 0.1}``, see :func:`genbench.ledger.figure_spec`):
they are drawn dashed and labelled. Non-finite values are left out of a figure and the count is
said in its caption; a figure that still cannot be drawn is named in the report with the
reason, and the others are drawn. Two figures whose names map to the same file name get
distinct files. PNGs are written next to the reports and embedded in the HTML as base64, so
``report.html`` can be mailed alone.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from genbench.ledger import (Check, ClaimRecord, LedgerWarning, default_ledger_path, fmt, latest,
                             read_ledger)

COLUMNS = ("claim", "case", "statement", "paper", "measured (needs)", "n", "scale", "device",
           "seconds", "verdict")
STATEMENT_CHARS = 110
CELL_CHECKS = 2  # checks shown in a table cell; all are in the claim's section


@dataclass(frozen=True)
class Figure:
    """One drawn (or undrawable) figure of a record."""

    record: ClaimRecord
    spec: dict[str, Any]
    path: Path | None  # None: it could not be drawn
    note: str = ""  # what was left out, or why it could not be drawn

    @property
    def title(self) -> str:
        return str(self.spec.get("title", self.spec.get("key", "figure")))


def write_report(ledger: str | os.PathLike[str] | None = None,
                 out: str | os.PathLike[str] = "report") -> list[Path]:
    """Render the ledger into ``out/report.md``, ``out/report.html`` and one PNG per figure.

    ``ledger`` defaults to ``$GENBENCH_LEDGER`` or ``results/ledger.jsonl`` in the current
    directory. Returns the paths written, reports first.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LedgerWarning)
        records = list(latest(read_ledger(ledger or default_ledger_path())).values())
    skipped = [str(w.message) for w in caught if issubclass(w.category, LedgerWarning)]
    for w in caught:  # the caller still sees every warning
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures, used = [], set()
    for record in records:
        for spec in record.figures:
            figures.append(_draw_safely(record, spec, out, used))
    md, page = out / "report.md", out / "report.html"
    md.write_text(render_markdown(records, figures, skipped))
    page.write_text(render_html(records, figures, skipped))
    return [md, page] + [f.path for f in figures if f.path is not None]


# ----------------------------------------------------------------------------- cells

def anchor(record: ClaimRecord) -> str:
    return "r-" + _slug(f"{record.id}-{_case(record) or ''}-{record.scale}")


def _case(record: ClaimRecord) -> str | None:
    return getattr(record, "case", None)


def verdict(record: ClaimRecord) -> str:
    """``pass``, ``known gap`` (a strict xfail: the record failed as stated), ``FAIL``,
    ``ERROR``."""
    if record.verdict == "fail" and record.xfail:
        return "known gap"
    return {"pass": "pass", "fail": "FAIL", "error": "ERROR"}.get(record.verdict, record.verdict)


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _check_cell(check: Check) -> str:
    mark = "" if check.passed else " ✗"
    return f"{check.name}: {fmt(check.measured)}{mark} ({check.bound})"


def _paper_cell(record: ClaimRecord) -> str:
    text = getattr(record, "paper", None)
    if text:
        return _short(text, 80)
    values = [f"{c.name}: {fmt(c.paper)}" for c in record.checks if c.paper is not None]
    return "; ".join(values[:CELL_CHECKS]) + (f"; +{len(values) - CELL_CHECKS}"
                                              if len(values) > CELL_CHECKS else "") or "-"


def _measured_cell(record: ClaimRecord) -> str:
    if record.error:
        return "error: " + _short(record.error, 80)
    # failed checks first: they are what the reader must see
    checks = sorted(record.checks, key=lambda c: c.passed)
    cells = [_check_cell(c) for c in checks[:CELL_CHECKS]]
    more = len(checks) - CELL_CHECKS
    return "; ".join(cells) + (f"; +{more} more" if more > 0 else "") or "-"


def _n_cell(record: ClaimRecord) -> str:
    sizes = list(record.sizes.items())
    text = "; ".join(f"{k}: {v}" for k, v in sizes[:2]) + (f"; +{len(sizes) - 2}"
                                                           if len(sizes) > 2 else "")
    return _short(text, 70) or "-"


def _device_cell(record: ClaimRecord) -> str:
    return _short(record.device.split(",")[0] + (")" if "(" in record.device.split(",")[0]
                                                 and ")" not in record.device.split(",")[0]
                                                 else ""), 30) or "-"


def row(record: ClaimRecord) -> dict[str, str]:
    """The short cells of one record's table row (details are in its section)."""
    return {"claim": record.id, "case": _case(record) or "-",
            "statement": _short(record.statement, STATEMENT_CHARS),
            "paper": _paper_cell(record), "measured (needs)": _measured_cell(record),
            "n": _n_cell(record), "scale": record.scale, "device": _device_cell(record),
            "seconds": f"{record.seconds:.1f}", "verdict": verdict(record)}


def summary(records: Sequence[ClaimRecord]) -> str:
    counts = {}
    for record in records:
        counts[verdict(record)] = counts.get(verdict(record), 0) + 1
    order = ("pass", "known gap", "FAIL", "ERROR")
    parts = [f"{counts[v]} {v}" for v in order if counts.get(v)]
    return (f"{len(records)} claim records (the latest per claim, case and scale): "
            + (", ".join(parts) or "none") + ".")


def provenance(records: Sequence[ClaimRecord]) -> tuple[str, bool]:
    """(a sentence on where the records come from, whether they mix runs)."""
    commits = sorted({r.commit or "unknown" for r in records})
    days = sorted({r.timestamp for r in records if r.timestamp})
    mixed = len(commits) > 1
    when = f"{days[0]} to {days[-1]}" if days else "unknown times"
    if mixed:
        return (f"These records mix {len(commits)} commits ({', '.join(c[:12] for c in commits)}), "
                f"recorded {when}: each claim's section gives its own commit and time.", True)
    return f"Commit {commits[0][:12] if commits else 'unknown'}, recorded {when}.", False


# ----------------------------------------------------------------------------- Markdown

def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(records: list[ClaimRecord], figures: list[Figure],
                    skipped: Sequence[str] = ()) -> str:
    prov, mixed = provenance(records)
    columns = COLUMNS + (("commit, time",) if mixed else ())
    lines = ["# genbench report", "", summary(records), "", prov, ""]
    lines += [f"Skipped ledger line: {_md(s)}" + "  " for s in skipped] + ([""] if skipped else [])
    lines += [
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        cells = row(r)
        cells["claim"] = f"[{r.id}](#{anchor(r)})"
        values = [_md(v) for v in cells.values()]
        if mixed:
            values.append(_md(f"{(r.commit or 'unknown')[:12]}, {r.timestamp}"))
        lines.append("| " + " | ".join(values) + " |")
    by_record: dict[str, list[Figure]] = {}
    for f in figures:
        by_record.setdefault(anchor(f.record), []).append(f)
    lines += ["", "## Claims", ""]
    for r in records:
        lines += [f'<a id="{anchor(r)}"></a>', "",
                  f"### {r.id}" + (f" [{_case(r)}]" if _case(r) else "") + f" ({r.scale}): "
                  f"{verdict(r)}", "", f"*{r.source}.* {r.statement}", ""]
        if getattr(r, "paper", None):
            lines += [f"Paper: {r.paper}", ""]
        if r.xfail:
            lines += [f"Known gap (strict xfail): {r.xfail}", ""]
        if r.error:
            lines += [f"Error: {r.error}", ""]
        if r.checks:
            lines += ["| check | measured | paper | needs | |", "|---|---|---|---|---|"]
            lines += [f"| {_md(c.name)} | {_md(fmt(c.measured))} | "
                      f"{_md('-' if c.paper is None else fmt(c.paper))} | {_md(c.bound)} | "
                      f"{'ok' if c.passed else '✗'} |" for c in r.checks]
            lines.append("")
        lines += [_md(_facts(r)), ""]
        for f in by_record.get(anchor(r), []):
            if f.path is None:
                lines += [f"Figure *{f.title}* could not be drawn: {f.note}", ""]
            else:
                lines += [f"![{_md(f.title)}]({f.path.name})", ""]
                lines += [f"*{f.note}*", ""] if f.note else []
    return "\n".join(lines) + "\n"


def _facts(r: ClaimRecord) -> str:
    sizes = "; ".join(f"{k}: {v}" for k, v in r.sizes.items()) or "-"
    seeds = ", ".join(str(s) for s in r.seeds) or "-"
    return (f"Data: {sizes}. Seeds: {seeds}. Device: {r.device or '-'}, {r.seconds:.1f} s. "
            f"Commit {(r.commit or 'unknown')[:12]}, {r.timestamp or 'time unknown'}.")


# ----------------------------------------------------------------------------- HTML

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;font-size:88%}"
    "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}"
    "th{background:#f3f3f3}td.v-pass{color:#080}td.v-FAIL,td.v-ERROR{color:#b00;"
    "font-weight:bold}td.v-known-gap{color:#a60}section{border-top:1px solid #ddd;"
    "margin-top:1.5em}img{max-width:720px;display:block}figure{margin:1em 0}"
    ".gap{background:#fff6e5;padding:4px}.err{background:#fdecec;padding:4px}"
    "p.prov{color:#555}")


def render_html(records: list[ClaimRecord], figures: list[Figure],
                skipped: Sequence[str] = ()) -> str:
    esc = html.escape
    prov, mixed = provenance(records)
    columns = COLUMNS + (("commit, time",) if mixed else ())
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    by_record: dict[str, list[Figure]] = {}
    for f in figures:
        by_record.setdefault(anchor(f.record), []).append(f)
    rows = []
    for r in records:
        cells = row(r)
        parts = [f"<td><a href='#{anchor(r)}'>{esc(r.id)}</a></td>"]
        for name, value in list(cells.items())[1:]:
            klass = f" class='v-{verdict(r).replace(' ', '-')}'" if name == "verdict" else ""
            title = f" title='{esc(r.statement)}'" if name == "statement" else ""
            parts.append(f"<td{klass}{title}>{esc(value)}</td>")
        if mixed:
            parts.append(f"<td>{esc((r.commit or 'unknown')[:12])}<br>{esc(r.timestamp)}</td>")
        n_fig = len(by_record.get(anchor(r), []))
        if n_fig:
            parts[0] = parts[0][:-5] + f" <a href='#{anchor(r)}-fig'>[{n_fig} fig]</a></td>"
        rows.append("<tr>" + "".join(parts) + "</tr>")
    sections = []
    for r in records:
        body = [f"<section id='{anchor(r)}'><h3>{esc(r.id)}"
                + (f" [{esc(_case(r))}]" if _case(r) else "")
                + f" ({esc(r.scale)}): {esc(verdict(r))}</h3>",
                f"<p><i>{esc(r.source)}.</i> {esc(r.statement)}</p>"]
        if getattr(r, "paper", None):
            body.append(f"<p>Paper: {esc(r.paper)}</p>")
        if r.xfail:
            body.append(f"<p class='gap'>Known gap (strict xfail): {esc(r.xfail)}</p>")
        if r.error:
            body.append(f"<p class='err'>Error: {esc(r.error)}</p>")
        if r.checks:
            body.append("<table><tr><th>check</th><th>measured</th><th>paper</th><th>needs</th>"
                        "<th></th></tr>" + "".join(
                            f"<tr><td>{esc(c.name)}</td><td>{esc(fmt(c.measured))}</td>"
                            f"<td>{esc('-' if c.paper is None else fmt(c.paper))}</td>"
                            f"<td>{esc(c.bound)}</td><td>{'ok' if c.passed else '✗'}</td></tr>"
                            for c in r.checks) + "</table>")
        body.append(f"<p class='prov'>{esc(_facts(r))}</p>")
        figs = by_record.get(anchor(r), [])
        if figs:
            body.append(f"<div id='{anchor(r)}-fig'>")
            for f in figs:
                if f.path is None:
                    body.append(f"<p class='err'>Figure <i>{esc(f.title)}</i> could not be drawn: "
                                f"{esc(f.note)}</p>")
                    continue
                data = base64.b64encode(f.path.read_bytes()).decode()
                body.append(f"<figure><img alt='{esc(f.title)}' src='data:image/png;base64,{data}'>"
                            f"<figcaption>{esc(f.title)}" + (f" ({esc(f.note)})" if f.note else "")
                            + "</figcaption></figure>")
            body.append("</div>")
        sections.append("".join(body) + "</section>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>genbench report</title>"
            f"<style>{STYLE}</style></head><body><h1>genbench report</h1>"
            f"<p>{esc(summary(records))}</p><p class='prov'>{esc(prov)}</p>"
            + "".join(f"<p class='err'>Skipped ledger line: {esc(s)}</p>" for s in skipped)
            + f"<table><tr>{head}</tr>{''.join(rows)}</table><h2>Claims</h2>"
            + "".join(sections) + "</body></html>\n")


# ----------------------------------------------------------------------------- figures

def _draw_safely(record: ClaimRecord, spec: Any, out: Path, used: set[str]) -> Figure:
    """Draw one figure; data that cannot be drawn is reported in the figure's place."""
    if not isinstance(spec, dict):
        return Figure(record, {"title": "figure"}, None, f"not a figure spec: {spec!r:.80}")
    try:
        path, note = draw_figure(record, spec, out, used)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        return Figure(record, spec, None, f"{type(err).__name__}: {err}")
    return Figure(record, spec, path, note)


def _finite(xs: Sequence[Any], ys: Sequence[Any] | None = None) -> tuple[list, list | None, int]:
    """The points whose coordinates are finite numbers, and how many were left out."""
    def ok(v: Any) -> bool:
        return isinstance(v, (int, float)) and math.isfinite(v)

    if ys is None:
        kept = [x for x in xs if ok(x)]
        return kept, None, len(xs) - len(kept)
    pairs = [(x, y) for x, y in zip(xs, ys) if ok(x) and ok(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs], len(xs) - len(pairs)


HIST_MAX_BINS = 200  # a figure 6.8 inches wide shows no more bars than this


def hist_edges(groups: Sequence[Sequence[float]]) -> Any:
    """Shared bin edges, as narrow as the tightest group needs (about sqrt(n) bins across its
    own range, at least 5): bins spread over the whole range put groups that lie far apart, as
    the extreme and normal runs' distances from init do, into one bar each."""
    import numpy as np

    values = np.concatenate([np.asarray(g, dtype=float) for g in groups])
    lo, hi = float(values.min()), float(values.max())
    widths = [float(np.ptp(g)) / max(5, int(np.sqrt(len(g)))) for g in groups if np.ptp(g) > 0]
    if hi == lo or not widths:
        return np.histogram_bin_edges(values, bins=10)
    bins = min(HIST_MAX_BINS, max(10, math.ceil((hi - lo) / min(widths))))
    return np.linspace(lo, hi, bins + 1)


def draw_figure(record: ClaimRecord, spec: dict[str, Any], out: Path,
                used: set[str] | None = None) -> tuple[Path, str]:
    """Draw one figure spec (see :func:`genbench.ledger.figure_spec`) to a PNG in ``out``;
    returns the path and a note on what was left out ("" when nothing was)."""
    import textwrap

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(6.8, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    kind = spec["kind"]
    series: dict[str, dict[str, list[float]]] = spec["series"]
    dropped = 0
    if kind == "hist":
        clean = {label: _finite(list(data["values"])) for label, data in series.items()}
        dropped = sum(c[2] for c in clean.values())
        groups = [kept for kept, _, _ in clean.values() if kept]
        if groups:
            edges = hist_edges(groups)
            for label, (kept, _, _) in clean.items():
                if kept:
                    ax.hist(kept, bins=edges, alpha=0.55, label=label)
    else:
        for label, data in series.items():
            xs, ys, n = _finite(list(data["x"]), list(data["y"]))
            dropped += n
            if not xs:
                continue
            if kind == "line":
                ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, label=label)
            else:
                ax.scatter(xs, ys, s=12, label=label)
    references = spec.get("references") or {}
    for i, (label, value) in enumerate(references.items()):
        if isinstance(value, (int, float)) and math.isfinite(value):
            axis = ax.axvline if kind == "hist" else ax.axhline
            axis(value, linestyle="--", linewidth=1.2, color=f"C{7 + i % 3}",
                 label=f"{label} ({fmt(float(value))})")
    title = "\n".join(textwrap.wrap(str(spec.get("title", "")), 60)) or spec.get("key", "")
    ax.set(title=title, xlabel=str(spec.get("xlabel", "")), ylabel=str(spec.get("ylabel", "")))
    has_data = bool(ax.lines or ax.collections or ax.patches)
    if spec.get("logx") and has_data:
        ax.set_xscale("log")
    if spec.get("logy") and has_data:
        ax.set_yscale("log")
    if not has_data:
        ax.text(0.5, 0.5, "no finite values to draw", ha="center", va="center",
                transform=ax.transAxes)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    case = f" [{_case(record)}]" if _case(record) else ""
    fig.suptitle(f"{record.id}{case} ({record.scale}): {verdict(record)}, {record.device}",
                 fontsize=8, color="#555")
    stem = f"{_slug(record.id)}{'-' + _slug(_case(record) or '') if _case(record) else ''}" \
           f"-{_slug(str(spec.get('key', 'figure')))}-{record.scale}"
    name, n = f"{stem}.png", 2
    used = set() if used is None else used
    while name.lower() in used:  # two keys with the same slug must not overwrite each other
        name, n = f"{stem}-{n}.png", n + 1
    used.add(name.lower())
    path = out / name
    fig.savefig(path)
    note = (f"{dropped} non-finite value{'s' if dropped != 1 else ''} left out"
            if dropped else "")
    return path, note


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
