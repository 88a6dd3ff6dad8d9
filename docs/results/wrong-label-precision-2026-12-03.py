"""Does float32 + jitter 1e-4 (Z.S5.norm_not_predictive's full-scale precision) interpolate
wrong test labels where float64 does? Measured after the full-scale record failed its
"fit with wrong test labels: training error" check (0.335 at 50,000 + 10,000), at an n where
float64 fits: 20,000 MNIST training images + 5,000 test images with wrong labels (seed 0),
the same construction as study.wrong_test_label_norms. Nothing in the claim is changed by it."""
import json
import sys
import time

import torch

from genbench.experiment import DataSpec
from genbench.studies import theory as study
from genbench.theory import KernelPrecision

torch.set_num_threads(2)
spec = study.FeatureSpec(DataSpec("mnist", source="full"))
rows = []
for precision in (study.EXACT, KernelPrecision("float32", jitter=1e-4),
                  KernelPrecision("float32", jitter=1e-5)):
    t0 = time.perf_counter()
    w = study.wrong_test_label_norms(spec, 20_000, 5_000, seed=0, precision=precision)
    row = dict(precision=f"{precision.dtype}, jitter {precision.jitter:g}", **vars(w),
               seconds=round(time.perf_counter() - t0, 1))
    rows.append(row)
    print(json.dumps(row), flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
