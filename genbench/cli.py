"""The ``genbench`` command.

Sub-commands are thin: each parses its arguments and calls one library function. Errors that
genbench raises on purpose (:class:`genbench.errors.GenbenchError`) are printed as one
paragraph with exit status 2 and no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from genbench.errors import GenbenchError


def _data_status(args: argparse.Namespace) -> int:
    from genbench.data.status import print_status

    return print_status(root=args.root)


def _data_fetch(args: argparse.Namespace) -> int:
    from genbench.data.status import fetch

    fetch(args.name, root=args.root)
    return 0


def _report(args: argparse.Namespace) -> int:
    from genbench.report import write_report

    paths = write_report(ledger=args.ledger, out=args.out)
    for path in paths:
        print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from genbench.compare import compare_main

    return compare_main(args.base, args.new)


def _run(args: argparse.Namespace) -> int:
    from genbench.runner import run_claims

    return run_claims(scale=args.scale, keyword=args.k, ledger=args.ledger, out=args.out,
                      extra=args.pytest_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="datasets: status and fetch")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    status = data_sub.add_parser("status", help="what is present, with content checksums")
    status.add_argument("--root", default=None, help="data root (default: $GENBENCH_DATA)")
    status.set_defaults(func=_data_status)
    fetch = data_sub.add_parser("fetch", help="download a dataset through torchvision")
    fetch.add_argument("name")
    fetch.add_argument("--root", default=None)
    fetch.set_defaults(func=_data_fetch)

    run = sub.add_parser("run", help="run the claims through pytest, then write the report")
    run.add_argument("--scale", choices=("smoke", "full"), default="smoke")
    run.add_argument("-k", default=None, help="pytest -k expression selecting claims")
    run.add_argument("--ledger", default=None)
    run.add_argument("--out", default="report")
    run.add_argument("pytest_args", nargs="*", help="extra arguments passed to pytest")
    run.set_defaults(func=_run)

    report = sub.add_parser("report", help="ledger -> Markdown + HTML report with figures")
    report.add_argument("--ledger", default=None)
    report.add_argument("--out", default="report")
    report.set_defaults(func=_report)

    compare = sub.add_parser("compare", help="reproducibility gate between two ledgers")
    compare.add_argument("base")
    compare.add_argument("new")
    compare.set_defaults(func=_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except GenbenchError as err:
        print(f"genbench: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
