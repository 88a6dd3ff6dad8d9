"""The ``genbench`` command.

Sub-commands are thin: each parses its arguments and calls one library function. Errors that
genbench raises on purpose (:class:`genbench.errors.GenbenchError`) are printed as one
paragraph with exit status 2 and no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Callable, Sequence

from genbench.errors import GenbenchError

# the keys of genbench.data.sources.SOURCES (not imported here: it loads torch, and --help
# should be instant); tests/test_cli.py checks that the two agree
_DATASETS = ("mnist", "fashion_mnist", "cifar10", "usps")


def _data_status(args: argparse.Namespace) -> int:
    from genbench.data.status import print_status

    return print_status(root=args.root)


def _data_fetch(args: argparse.Namespace) -> int:
    from genbench.data.status import fetch

    fetch(args.name, root=args.root)
    return 0


def _report(args: argparse.Namespace) -> int:
    import warnings

    from genbench.ledger import LedgerWarning
    from genbench.report import write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LedgerWarning)
        paths = write_report(ledger=args.ledger, out=args.out)
    for warning in caught:  # one line each, without Python's source-line echo
        print(f"genbench report: {warning.message}", file=sys.stderr)
    for path in paths:
        print(path)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from genbench.doctor import main as doctor_main

    return doctor_main(args.device, args.json)


def _compare(args: argparse.Namespace) -> int:
    from genbench.compare import compare_main

    return compare_main(args.base, args.new)


def _run(args: argparse.Namespace) -> int:
    from genbench.runner import run_claims

    if args.device:
        os.environ["GENBENCH_DEVICE"] = args.device
    _set_runs(args)
    if args.budget or args.memory or args.campaign:  # resumable, cheapest first (campaign.py)
        from genbench.campaign import campaign_main

        if args.threads:
            os.environ["GENBENCH_THREADS"] = str(args.threads)
        return campaign_main(args.scale, args.k, args.ledger, args.budget, args.memory,
                             args.device, retry_errors=args.retry_errors, extra=args.pytest_args,
                             out=args.out)
    return run_claims(scale=args.scale, keyword=args.k, ledger=args.ledger, out=args.out,
                      extra=args.pytest_args, threads=args.threads)


def _runs(text: str) -> int:
    """argparse type of --runs: a whole number >= 1."""
    try:
        runs = int(text)
    except ValueError:
        runs = 0
    if runs < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of runs >= 1")
    return runs


def _set_runs(args: argparse.Namespace) -> None:
    """--runs R reaches the claim modules (and a campaign's children) as GENBENCH_RUNS."""
    if args.runs is None:
        return
    if args.scale != "full":
        raise GenbenchError("--runs sets R of the full-scale extreme-overfitting studies; "
                            f"--scale {args.scale} has its own R (use --scale full)")
    os.environ["GENBENCH_RUNS"] = str(args.runs)


def _claims(args: argparse.Namespace) -> int:
    from genbench import catalogue

    claims = catalogue.collect(args.k)
    render = (catalogue.render_json if args.json else
              catalogue.render_markdown if args.markdown else catalogue.render_text)
    sys.stdout.write(render(claims))
    return 0 if claims else 1


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("genbench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Help(argparse.HelpFormatter):
    """Shows an option's default unless its help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) \
                or not action.option_strings:
            return text
        return f"{text} (default: {action.default})"


def _plan(args: argparse.Namespace) -> int:
    from genbench.plan import plan_main

    _set_runs(args)
    return plan_main(scale=args.scale, keyword=args.k, budget=args.budget, memory=args.memory,
                     as_json=args.json, measured=args.measured)


def build_parser() -> argparse.ArgumentParser:
    fmt = _Help
    parser = argparse.ArgumentParser(
        prog="genbench", formatter_class=fmt,
        description="genbench: deep-learning generalization papers' claims as tests. "
                    "Start with `genbench claims` (what is claimed) and `genbench run` (the "
                    "smoke reproduction on the CPU, then the report).",
        epilog="Environment: GENBENCH_LEDGER (ledger path), GENBENCH_DATA (data root), "
               "GENBENCH_DEVICE (cpu, cuda, cuda:N), GENBENCH_THREADS (CPU threads), "
               "GENBENCH_RUN_CACHE (keep trained runs), GENBENCH_SCALE (pytest --scale), "
               "GENBENCH_RUNS (R of the full-scale extreme-overfitting studies).")
    parser.add_argument("--version", action="version", version=f"genbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", formatter_class=fmt, help="run the claims through pytest, then write the report",
        description="Run `pytest claims/` at one scale (with progress, a time-left estimate and "
                    "a verdict table), then render the ledger with `genbench report`. Arguments "
                    "after `--` go to pytest unchanged, e.g. `genbench run -- -x -v` or "
                    "`genbench run -- -n 2` (pytest-xdist).")
    run.add_argument("--scale", choices=("smoke", "full"), default="smoke",
                     help="smoke: CPU, fixture subsets (minutes); full: the papers' settings, "
                          "the `gpu` cases")
    run.add_argument("-k", default=None, metavar="EXPR",
                     help="pytest -k expression selecting claims (any part of an id or case, "
                          "e.g. fit_random or 'Z.T1 and mlp')")
    run.add_argument("--ledger", default=None, metavar="PATH",
                     help="ledger to append records to (default: $GENBENCH_LEDGER or "
                          "results/ledger.jsonl)")
    run.add_argument("--out", default="report", metavar="DIR",
                     help="directory of report.md, report.html and the figures")
    run.add_argument("--threads", type=int, default=None, metavar="N",
                     help="CPU threads for torch (default: $GENBENCH_THREADS, else torch's "
                          "default of one per core); use fewer on a shared machine")
    run.add_argument("--device", default=None, metavar="DEV",
                     help="device of every case (sets GENBENCH_DEVICE), e.g. cpu to run full "
                          "scale on the CPU")
    run.add_argument("--campaign", action="store_true",
                     help="resumable campaign: one pytest per case, cheapest first (by `genbench "
                          "plan`), skipping cases recorded for the same code; implied by "
                          "--budget/--memory")
    run.add_argument("--budget", default=None, metavar="TIME",
                     help="campaign wall-clock budget (e.g. 2h): cases whose estimate does not "
                          "fit what is left are not started")
    run.add_argument("--memory", default=None, metavar="SIZE",
                     help="campaign memory limit (e.g. 6GiB): cases estimated above it are not run")
    run.add_argument("--runs", type=_runs, default=None, metavar="R",
                     help="full scale: R runs per group in the extreme-overfitting studies "
                          "instead of the paper's 200 (sets GENBENCH_RUNS; every record states R)")
    run.add_argument("--retry-errors", action="store_true",
                     help="campaign: run again cases whose record has verdict error")
    run.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARG",
                     help="extra arguments passed to pytest (put them after `--`)")
    run.set_defaults(func=_run)

    claims = sub.add_parser(
        "claims", formatter_class=fmt, help="list the claims (from the claim marks)",
        description="List every claim: id, paper and section, statement, the paper's numbers, "
                    "scales, cases and known gaps, read from the claim marks in claims/ "
                    "(collection only, nothing trains). docs/claims.md is `genbench claims "
                    "--markdown`.")
    claims.add_argument("-k", default=None, metavar="EXPR",
                        help="pytest -k expression selecting claims")
    form = claims.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON (a list of claims)")
    form.add_argument("--markdown", action="store_true",
                      help="print the Markdown of docs/claims.md")
    claims.set_defaults(func=_claims)

    plan = sub.add_parser("plan", formatter_class=fmt,
                          help="each claim case's work, time here and on one GPU, memory")
    plan.add_argument("--scale", choices=("smoke", "full"), default="full",
                      help="the scale to plan")
    plan.add_argument("-k", default=None, metavar="EXPR",
                      help="pytest -k expression selecting claim cases")
    plan.add_argument("--budget", default=None, metavar="TIME",
                      help="a case fits when its estimate here is within TIME, e.g. 2h, 90m")
    plan.add_argument("--memory", default=None, metavar="SIZE",
                      help="a case fits when its estimated peak memory is within SIZE, e.g. 20GiB")
    plan.add_argument("--runs", type=_runs, default=None, metavar="R",
                      help="plan the extreme-overfitting studies with R runs per group instead "
                           "of the paper's 200 (as `genbench run --runs R`)")
    plan.add_argument("--json", action="store_true", help="JSON for tools instead of the table")
    plan.add_argument("--measured", default=None, metavar="LEDGER",
                      help="instead: each case a campaign ran into LEDGER, estimate vs measured")
    plan.set_defaults(func=_plan)

    report = sub.add_parser("report", formatter_class=fmt,
                            help="ledger -> Markdown + HTML report with figures",
                            description="Render the latest record of each claim, case and "
                                        "scale: a verdict table and the papers' figures.")
    report.add_argument("--ledger", default=None, metavar="PATH",
                        help="ledger to read (default: $GENBENCH_LEDGER or results/ledger.jsonl)")
    report.add_argument("--out", default="report", metavar="DIR",
                        help="directory to write report.md, report.html and PNGs to")
    report.set_defaults(func=_report)

    compare = sub.add_parser("compare", formatter_class=fmt,
                             help="reproducibility gate between two ledgers",
                             description="Exit 1 when a verdict changed or a measured value "
                                         "moved beyond its tolerance, 2 on unreadable input.")
    compare.add_argument("base", help="baseline ledger (e.g. results/baseline/smoke.jsonl)")
    compare.add_argument("new", help="ledger of the new run (e.g. results/ledger.jsonl)")
    compare.set_defaults(func=_compare)

    doctor = sub.add_parser("doctor", formatter_class=fmt,
                            help="check and time the training engine on this machine",
                            description="Versions; resume, bitwise determinism, every "
                                        "precision/compile path, vmap = sequential, DDP on 2+ "
                                        "GPUs; fit and fit_many speed ratios. Exit 1 on any "
                                        "failed check.")
    doctor.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: CUDA when present, else the CPU)")
    doctor.add_argument("--json", action="store_true", help="JSON for the record")
    doctor.set_defaults(func=_doctor)

    data = sub.add_parser("data", formatter_class=fmt, help="datasets: status and fetch")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    status = data_sub.add_parser("status", formatter_class=fmt,
                                 help="what is present, with content checksums")
    status.add_argument("--root", default=None, metavar="DIR",
                        help="data root (default: $GENBENCH_DATA or ~/.cache/genbench/data)")
    status.set_defaults(func=_data_status)
    fetch = data_sub.add_parser("fetch", formatter_class=fmt,
                                help="download a dataset through torchvision (needs internet)")
    fetch.add_argument("name", metavar="NAME",
                       help=f"dataset to download: one of {', '.join(_DATASETS)} (ImageNet is not "
                            f"downloaded: point GENBENCH_IMAGENET to an ImageFolder tree)")
    fetch.add_argument("--root", default=None, metavar="DIR",
                       help="data root (default: $GENBENCH_DATA or ~/.cache/genbench/data)")
    fetch.set_defaults(func=_data_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    for stream in (sys.stdout, sys.stderr):  # a path that is not UTF-8 prints as \udcxx, not
        with contextlib.suppress(AttributeError, ValueError):  # as a UnicodeEncodeError
            stream.reconfigure(errors="backslashreplace")
    try:
        return handler(args)
    except GenbenchError as err:
        print(f"genbench: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
