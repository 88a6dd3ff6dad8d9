"""Float32 + jitter against float64 for CIFAR-10 Gaussian-kernel interpolation, before any
float32 CIFAR-10 run: raw pixels and random-conv features (8,000 filters, 400,000 patches,
as Z.T3.kernel_cifar's full settings), n = 10,000 and 20,000, jitter 1e-5 and 1e-4.
Only float32 against float64 is compared; no paper number is read."""
import json
import sys
import time

import torch

from genbench.experiment import DataSpec
from genbench.studies import theory as study
from genbench.theory import KernelPrecision
from genbench.theory.kernels import KernelSolveError

torch.set_num_threads(2)
rows = []
for kind in ("raw", "random_conv"):
    if kind == "raw":
        spec = study.FeatureSpec(DataSpec("cifar10", source="full"), "raw")
    else:  # features for the 20,000 images this measurement uses (the full case: 50,000)
        spec = study.FeatureSpec(DataSpec("cifar10", source="full", n_train=20_000), kind,
                                 num_filters=8_000, num_patches=400_000)
    for n in (10_000, 20_000):
        for jitter in (1e-5, 1e-4):
            t0 = time.perf_counter()
            try:
                g = study.precision_gap(spec, n, KernelPrecision("float32", jitter=jitter))
                row = dict(kind=kind, n=n, jitter=jitter, exact_error=g.exact_error,
                           error=g.error, disagreements=g.disagreements, n_test=g.n_test)
            except KernelSolveError as e:
                row = dict(kind=kind, n=n, jitter=jitter, error=None, breakdown=str(e)[:200])
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
