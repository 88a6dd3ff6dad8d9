"""The README's promises, checked: its Python example runs on a CPU, the claim mark works in
one's own test suite, `pytest claims/ -m gpu` on a machine without CUDA skips everything and
exits 0, the benchmark commands work in the order written, and every command of its tables
parses (genbench) or collects (pytest)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genbench import ledger as lg
from genbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
pytest_plugins = ["pytester"]


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def table_commands() -> list[str]:
    """Every `command` in the second column of the README's tables."""
    commands = []
    for line in README.splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and len(cells) >= 2:
            commands += re.findall(r"`([^`]+)`", " | ".join(cells[1:]))
    return [c for c in commands if c.split()[0] in ("pytest", "genbench", "torchrun")]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GENBENCH_") and k != "PYTEST_ADDOPTS"}
    return {**env, "MPLBACKEND": "Agg", **extra}


def test_the_set_up_is_two_commands_and_ci_runs_them():
    (setup,) = code_blocks(section("Set up (fresh machine, Python >= 3.11)"), "bash")[:1]
    lines = [line for line in setup.splitlines() if line.strip()]
    assert lines == ["pip install -c constraints.txt -e . && genbench run",
                     "pytest && pytest benchmarks --benchmark-disable && genbench compare "
                     "results/baseline/smoke.jsonl results/ledger.jsonl"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -c constraints.txt -e .\n" + lines[1] in ci


def test_python_example_runs_on_a_cpu_from_the_fixtures(tmp_path):
    (example,) = code_blocks(section("Your own models and studies"), "python")
    assert "cuda" not in example.split("print(")[0] and 'source="full"' not in example
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = eval(done.stdout.strip().splitlines()[-1])  # the list the example prints
    assert len(results) == 3
    for fit_epoch, test_acc in results:
        assert fit_epoch is not None and fit_epoch <= 60  # random labels memorized
        assert 0.04 <= test_acc <= 0.17  # chance (0.1) within binomial noise of 500 images


def test_claim_mark_in_ones_own_test_suite(pytester):
    pytester.makepyfile(test_mine=textwrap.dedent('''
        import pytest

        @pytest.mark.claim("M.T1.my_claim", source="My paper, Table 1",
                           statement="my model beats chance", paper="Table 1: 0.93")
        def test_my_claim(claim, scale, device):
            claim.at_least("accuracy", 0.95, 0.9, paper=0.93)
            claim.conclude()
    '''))
    ledger = pytester.path / "ledger.jsonl"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--ledger={ledger}",
                                           "-rs", "--claim-progress=lines")
    result.assert_outcomes(passed=1, skipped=0 if _cuda() else 1)
    (record,) = lg.read_ledger(ledger)
    assert (record.id, record.scale, record.verdict) == ("M.T1.my_claim", "smoke", "pass")
    result.stdout.fnmatch_lines(["*M.T1.my_claim (smoke) started*",
                                 "*claim verdicts (this run)*",
                                 "M.T1.my_claim*smoke*pass*accuracy*0.95*0.93*>= 0.9*"])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda(), reason="this machine has CUDA: the gpu cases would run")
def test_gpu_claims_skip_with_the_reason_on_a_machine_without_cuda(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-m", "gpu", "-rs", "-q",
                           "-p", "no:cacheprovider", f"--ledger={tmp_path / 'l.jsonl'}"],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ skipped, \d+ deselected in .*", summary), summary
    assert "full scale needs a CUDA GPU" in done.stdout
    assert not (tmp_path / "l.jsonl").exists()  # nothing measured, nothing recorded


def test_benchmark_commands_work_in_the_order_written(pytester):
    """The README's autosave-then-compare pair, on a tiny benchmark: the compare line must come
    after a save, and its gate must not be a 15% single-round one.

    The benchmark's clock is a counter (one tick per reading), so every round lasts exactly one
    tick and the compare gate sees no change: this test checks that the commands work in the order
    written, not how fast the machine is (with the real clock a 12 us benchmark moved by 64%
    between two runs on a loaded CI machine and failed the 50% gate)."""
    commands = [c for c in code_blocks(section("Benchmarks"), "bash")[0].splitlines()
                if c.strip()]
    commands = [shlex.split(c.split("#")[0]) for c in commands]
    save = next(i for i, c in enumerate(commands) if "--benchmark-autosave" in c)
    compare = next(i for i, c in enumerate(commands) if "--benchmark-compare" in c)
    assert save < compare
    gate = next(a for a in commands[compare] if a.startswith("--benchmark-compare-fail="))
    assert int(re.search(r":(\d+)%", gate).group(1)) >= 25
    pytester.makepyfile(test_engine='''
        def test_tiny(benchmark):
            benchmark.pedantic(sum, args=(range(1000),), rounds=3, warmup_rounds=1)
    ''', counting_clock='''
        import itertools
        _ticks = itertools.count()

        def tick():
            return next(_ticks)
    ''')
    for argv in (commands[save], commands[compare]):
        args = [a if not a.startswith("benchmarks") else "test_engine.py" for a in argv[1:]]
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                               "--benchmark-timer=counting_clock.tick", *args)
        assert result.ret == 0, result.stdout.str()[-2000:]
    assert "Comparing against benchmarks from" in result.stderr.str() + result.stdout.str()


def test_every_genbench_command_of_the_tables_parses():
    commands = [c for c in table_commands() if c.startswith("genbench")]
    assert {"genbench run", "genbench claims", "genbench compare BASE.jsonl NEW.jsonl"} <= set(commands)
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command.replace("[", "").replace("]", ""))[1:]  # optional parts too
        args = parser.parse_args([{"PATH": "x.jsonl", "DIR": "out", "EXPR": "fit"}.get(a, a)
                                  for a in argv])
        assert callable(args.func), command


def test_every_pytest_command_of_the_tables_collects(tmp_path):
    commands = [c for c in table_commands() if c.startswith(("pytest", "torchrun"))]
    assert len(commands) >= 4
    for command in commands:
        argv = shlex.split(command)
        argv = argv[argv.index("pytest") + 1:] if "pytest" in argv else argv
        done = subprocess.run([sys.executable, "-m", "pytest", *argv, "--collect-only", "-q",
                               "-p", "no:cacheprovider", f"--ledger={tmp_path / 'l.jsonl'}"],
                              cwd=ROOT, env=child_env(), capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert re.search(r"\d+(/\d+)? tests? collected", done.stdout), (command, done.stdout[-500:])
