"""``genbench doctor`` passes on this machine (CI runs it here, on the CPU, with tiny sizes)."""

from __future__ import annotations

import json
import subprocess
import sys

CHECKS = {"resume", "determinism", "paths", "vmap_equals_sequential", "ddp", "timings"}
RATIOS = {"fit_vs_minimal_loop", "fit_vs_dataloader_loop", "ops_launch_ratio"}


def test_doctor_json_passes_every_check():
    done = subprocess.run([sys.executable, "-m", "genbench.cli", "doctor", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] and {c["name"] for c in report["checks"]} == CHECKS
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert RATIOS <= report["timings"].keys()
    assert report["versions"]["torch"]
