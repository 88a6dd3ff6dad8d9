"""The claims catalogue, read from the claim marks themselves (``genbench claims``).

Why from the marks and not from a hand-written list: the marks are what the tests run, so a
catalogue built from them cannot drift from the suite. pytest collects ``claims/`` in-process
(collection only: the claim modules are imported, nothing trains, a few seconds), and a small
plugin reads each collected item's claim mark, its scale, its case (the parametrize id without
the scale) and the strict-xfail mark the genbench plugin applied to it (a known gap).

``docs/claims.md`` is :func:`render_markdown` of the same catalogue; ``tests/test_cli_claims.py``
fails when it is out of date (regenerate with ``genbench claims --markdown > docs/claims.md``).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from genbench.errors import GenbenchError

REGENERATE = "genbench claims --markdown > docs/claims.md"


@dataclass(frozen=True)
class Claim:
    """One claim as its mark states it, with the scales and cases its tests run at."""

    id: str
    source: str
    statement: str
    paper: str | None
    module: str
    heading: str
    distributed: bool = False
    scales: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    gaps: dict[str, str] = field(default_factory=dict)  # "smoke[case]" or "smoke" -> reason


def case_of(item: Any) -> str | None:
    """The item's case: its parametrize id without the scale part (``mlp_1x512`` of
    ``test_fit_random[mlp_1x512-smoke]``), as the plugin records it; None for one case."""
    from genbench.pytest_plugin import case_id

    return case_id(item)


class _Collector:
    """A pytest plugin that keeps every collected claim item's facts."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def pytest_collection_finish(self, session: Any) -> None:
        for item in session.items:
            mark = item.get_closest_marker("claim")
            if mark is None or not mark.args:
                continue
            xfail = item.get_closest_marker("xfail")
            module = getattr(item, "module", None)
            doc = (getattr(module, "__doc__", None) or "").strip()
            self.items.append({
                "id": str(mark.args[0]), "source": str(mark.kwargs.get("source", "")),
                "statement": str(mark.kwargs.get("statement", "")),
                "paper": None if mark.kwargs.get("paper") is None else str(mark.kwargs["paper"]),
                "distributed": bool(mark.kwargs.get("distributed", False)),
                "module": Path(str(item.path)).name,
                "heading": doc.splitlines()[0] if doc else Path(str(item.path)).stem,
                "scale": getattr(getattr(item, "callspec", None), "params", {}).get("scale"),
                "case": case_of(item),
                "xfail": None if xfail is None else str(xfail.kwargs.get("reason", "xfail")),
            })


def collect(keyword: str | None = None, path: str | Path = "claims") -> list[Claim]:
    """The claims under ``path`` (``-k keyword`` as in pytest), in the order pytest collects them."""
    import pytest

    if not Path(path).is_dir():
        raise GenbenchError(f"no {path}/ directory in {Path.cwd()}: run `genbench claims` from the "
                            f"root of a genbench checkout")
    collector = _Collector()
    # genbench is imported already (this is its CLI), so pytest cannot assertion-rewrite the
    # plugin's package; that warning is moot for a collection and must not fail it
    args = [str(path), "--collect-only", "-q", "--scale=both", "-p", "no:cacheprovider",
            "--capture=no", "-W", "ignore::pytest.PytestAssertRewriteWarning"] + (
        ["-k", keyword] if keyword else [])
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = pytest.main(args, plugins=[collector])
    if status not in (0, 5):  # 5: nothing selected by -k
        raise GenbenchError(f"collecting {path}/ failed (pytest exit status {int(status)}):\n"
                            + output.getvalue()[-4000:])
    claims: dict[str, dict[str, Any]] = {}
    for it in collector.items:
        c = claims.setdefault(it["id"], {**{k: it[k] for k in (
            "id", "source", "statement", "paper", "module", "heading", "distributed")},
            "scales": [], "cases": [], "gaps": {}})
        if it["scale"] and it["scale"] not in c["scales"]:
            c["scales"].append(it["scale"])
        if it["case"] and it["case"] not in c["cases"]:
            c["cases"].append(it["case"])
        if it["xfail"]:
            where = it["scale"] + (f"[{it['case']}]" if it["case"] else "")
            c["gaps"][where] = it["xfail"]
    return [Claim(**{**c, "scales": tuple(c["scales"]), "cases": tuple(c["cases"])})
            for c in claims.values()]


def _scales(claim: Claim) -> str:
    words = {"smoke": "smoke (CPU, fixtures)",
             "full": "full (paper's setting, GPU" + (", distributed" if claim.distributed else "")
                     + ")"}
    return ", ".join(words.get(s, s) for s in claim.scales)


def render_text(claims: Sequence[Claim]) -> str:
    """The terminal listing: one block per claim."""
    blocks = []
    for c in claims:
        lines = [f"{c.id}  ({c.source})", f"    {c.statement}"]
        lines += [f"    paper: {c.paper}"] if c.paper else []
        lines += [f"    scales: {_scales(c)}"]
        lines += [f"    cases: {', '.join(c.cases)}"] if c.cases else []
        lines += [f"    known gap {where}: {reason}" for where, reason in c.gaps.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + f"\n\n{len(claims)} claims\n"


def render_json(claims: Sequence[Claim]) -> str:
    return json.dumps([asdict(c) for c in claims], indent=2) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(claims: Sequence[Claim]) -> str:
    """``docs/claims.md``: a table of contents, then one section per claim module."""
    gaps = sum(len(c.gaps) for c in claims)
    lines = ["# Claims catalogue", "",
             f"<!-- generated from the claim marks by `{REGENERATE}`; do not edit by hand -->",
             "",
             f"{len(claims)} claims, each one pytest test in `claims/` run at two scales: "
             "`smoke` (CPU, the real-data subsets in `fixtures/`, gates CI) and `full` (the "
             f"paper's setting, marked `gpu`). {gaps} known gaps (strict xfails) are listed "
             "with their reasons; their measured numbers are in the ledger and the report. Run "
             "one claim with `pytest claims/ -k ID` or `genbench run -k ID`; list them with "
             "`genbench claims [-k EXPR] [--json]`.", ""]
    by_module: dict[str, list[Claim]] = {}
    for c in claims:
        by_module.setdefault(c.module, []).append(c)
    for module, group in by_module.items():
        lines += [f"## {group[0].heading}", "", f"`claims/{module}`", "",
                  "| id | source | statement | paper | scales | cases | known gaps |",
                  "|---|---|---|---|---|---|---|"]
        for c in group:
            gap = "<br>".join(f"**{w}**: {_md(r)}" for w, r in c.gaps.items()) or "-"
            lines.append(f"| `{c.id}` | {_md(c.source)} | {_md(c.statement)} | "
                         f"{_md(c.paper or '-')} | {_md(_scales(c))} | "
                         f"{_md(', '.join(c.cases) or '-')} | {gap} |")
        lines.append("")
    return "\n".join(lines)
