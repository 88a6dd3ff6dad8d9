"""The reproducibility gate: does a new ledger reproduce a baseline ledger?

For every (claim id, case, scale) in BASE (a case is one row of a parametrized claim; records
without one, from before cases existed, have case None), the latest record in NEW must

1. exist, and have the same verdict;
2. have every check of the baseline, with the same pass/fail;
3. keep each numeric measured value within the check's ``tol`` of the baseline's measured
   value: ``|new - base| <= tol`` (``tol`` is recorded with the check: by default the check's
   own tolerance width, see :class:`genbench.ledger.Check`); a check without ``tol``, and any
   non-numeric measured value (bools, strings), must be equal.

Claims only in NEW are new, not differences. CI runs this against a committed baseline ledger
of the smoke run, so any change of code that moves a measured value past its tolerance, or
flips a verdict, fails the build with the differences printed as a table.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

from genbench.ledger import (Check, ClaimRecord, LedgerWarning, fmt, latest,
                             read_ledger_strict)


@dataclass(frozen=True)
class Difference:
    """One way in which NEW fails to reproduce BASE."""

    claim: str
    case: str | None
    scale: str
    what: str
    base: str
    new: str
    allowed: str = ""


def compare_records(base: list[ClaimRecord], new: list[ClaimRecord]) -> list[Difference]:
    """Every difference between the latest records of BASE and NEW (empty: reproduced)."""
    newest = latest(new)
    differences: list[Difference] = []
    for key, old in latest(base).items():
        record = newest.get(key)
        if record is None:
            differences.append(Difference(*key, "record", "present", "missing"))
            continue
        if record.verdict != old.verdict:
            differences.append(Difference(*key, "verdict", old.verdict, record.verdict))
        checks = {c.name: c for c in record.checks}
        for check in old.checks:
            differences += _compare_check(key, check, checks.pop(check.name, None))
        differences += [Difference(*key, f"check {name}", "absent", fmt(c.measured))
                        for name, c in checks.items()]
    return differences


def _compare_check(key: tuple[str, str | None, str], old: Check, new: Check | None) -> list[Difference]:
    what = f"check {old.name}"
    if new is None:
        return [Difference(*key, what, fmt(old.measured), "missing")]
    found = []
    if new.passed != old.passed:
        found.append(Difference(*key, f"{what} passed", str(old.passed), str(new.passed)))
    if not _measured_close(old, new):
        allowed = "equal" if old.tol is None or not _numbers(old, new) else f"±{fmt(old.tol)}"
        found.append(Difference(*key, f"{what} measured", fmt(old.measured), fmt(new.measured),
                                allowed))
    return found


def _numbers(*checks: Check) -> bool:
    return all(isinstance(c.measured, (int, float)) and not isinstance(c.measured, bool)
               for c in checks)


def _measured_close(old: Check, new: Check) -> bool:
    if not _numbers(old, new):
        return old.measured == new.measured
    a, b = float(old.measured), float(new.measured)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if old.tol is None:
        return a == b
    return abs(a - b) <= old.tol * (1 + 1e-9) + 1e-12  # slack for the float rounding of tol


def format_table(differences: list[Difference]) -> str:
    """The differences as an aligned plain-text table."""
    header = ("claim", "case", "scale", "what", "baseline", "new", "allowed")
    rows = [header] + [(d.claim, d.case or "", d.scale, d.what, d.base, d.new, d.allowed)
                       for d in differences]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def compare_main(base: str | os.PathLike[str], new: str | os.PathLike[str]) -> int:
    """Print the differences between two ledgers; 1 if there are any, else 0.

    BASE is read strictly (an empty, unreadable or partly unreadable baseline, or a record
    with a wrong field, is a LedgerError naming the file, line and field: exit 2), so the gate
    can never pass on a baseline it did not read. NEW may have one torn last line (a killed
    run), which is skipped with a note; any other bad line in NEW is an error too.
    """
    old_records = read_ledger_strict(base, role="baseline ledger")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LedgerWarning)
        new_records = read_ledger_strict(new, role="new ledger", torn_last_line_ok=True)
    for warning in caught:
        print(f"genbench compare: note: {warning.message}")
    for line in version_notes(old_records, new_records):
        print(f"genbench compare: note: {line}")
    differences = compare_records(old_records, new_records)
    if differences:
        print(f"genbench compare: {new} does not reproduce {base}: "
              f"{len(differences)} difference(s)\n")
        print(format_table(differences))
        return 1
    print(f"genbench compare: {new} reproduces all {len(latest(old_records))} "
          f"(claim, case, scale) records of {base}")
    return 0


def version_notes(base: list[ClaimRecord], new: list[ClaimRecord]) -> list[str]:
    """One line per library whose version differs between the two ledgers' latest records.

    Differences measured under another torch (say) may come from the library rather than the
    code under test, so the gate says so beside its verdict (it does not change the verdict).
    """
    def versions(records: list[ClaimRecord]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for record in latest(records).values():
            for name, version in record.versions.items():
                found.setdefault(str(name), set()).add(str(version))
        return found

    old, fresh = versions(base), versions(new)
    notes = []
    for name in sorted(set(old) & set(fresh)):
        if old[name] != fresh[name]:
            notes.append(f"the ledgers come from different {name} versions: "
                         f"{', '.join(sorted(old[name]))} (baseline) vs "
                         f"{', '.join(sorted(fresh[name]))} (new); a difference may come from "
                         f"the library, not the code")
    return notes
