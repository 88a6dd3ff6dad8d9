"""Benchmark ratios, computed once every benchmark of the session has run.

A benchmark that sets ``extra_info["baselines"]`` (names of other benchmarks in the same
session) gets ``extra_info["speedup_vs_<baseline>"]`` = baseline median / its own median in
the JSON report (``--benchmark-json`` / ``--benchmark-autosave``), whatever order the tests
ran in: ratios are the headline figures (comparable across machines), and no test depends on
another having run first.
"""

from __future__ import annotations

from typing import Any


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict) -> None:
    medians = {b["name"]: b["stats"]["median"] for b in output_json.get("benchmarks", [])
               if b.get("stats")}
    for bench in output_json.get("benchmarks", []):
        info = bench.get("extra_info", {})
        mine = medians.get(bench["name"])
        for base in info.get("baselines", []):
            if mine and base in medians:
                label = base.split("[")[-1].rstrip("]")
                info[f"speedup_vs_{label}"] = medians[base] / mine
