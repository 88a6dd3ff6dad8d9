"""Seconds per training step of the engine, per model of the papers, on the device it runs on.

Why: `genbench plan`'s GPU column assumes a utilisation (0.4 of bf16 peak) and a floor of
0.3 ms per step (then genbench.plan.GPU_STEP_S); neither had been measured. This times the engine
itself (fit / fit_many, precision "auto": bf16 autocast on CUDA) in eager mode (torch.compile
off: its minutes of compiling do not fit a 15-minute lease; the campaign's compiled runs give
the compiled times) on synthetic data of each case's shape, at the papers' batch 128: Zhang's models alone (K = 1,
SGD + momentum) and the extreme-overfitting models side by side (K = 20 under vmap, Adam), the
setting of the R = 20 studies. The first epoch (cuDNN autotuning, allocator warm-up) is
timed apart from the rest. Usage: python gpu-step-times-2026-12-04.py OUT.json [--device cuda] [--quick]
"""
import argparse
import json
import time

import torch

from genbench.models.registry import build
from genbench.plan import model_cost
from genbench.training import TrainConfig, fit_many

CASES = [  # (model, input shape, K, optimizer)
    ("mlp_1x512", (3, 28, 28), 1, "sgd"),
    ("alexnet_small", (3, 28, 28), 1, "sgd"),
    ("inception_small", (3, 28, 28), 1, "sgd"),
    ("eo_mlp", (1, 28, 28), 20, "adam"),
    ("eo_cnn", (1, 28, 28), 20, "adam"),
    ("eo_resnet", (1, 28, 28), 20, "adam"),
    ("eo_cnn", (1, 28, 28), 1, "adam"),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of the script")
    a = p.parse_args()
    steps, epochs = (4, 2) if a.quick else (100, 3)
    rows = []
    for name, shape, k, opt in CASES:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(steps * 128, *shape, generator=g).to(a.device)
        y = torch.randint(0, 10, (steps * 128,), generator=g).to(a.device)
        data = torch.utils.data.TensorDataset(x, y)
        models = [build(name, shape, 10, seed=i) for i in range(k)]
        cfg = TrainConfig(optimizer=opt, lr=1e-3 if opt == "adam" else 0.01, batch_size=128,
                          max_epochs=epochs, eval_every=epochs, compile="off")
        t0 = time.perf_counter()
        res = fit_many(models, data, cfg, device=a.device, progress=False, name=name,
                       strategy="vmap" if k > 1 else "auto")
        wall = time.perf_counter() - t0
        first = res[0].curves["seconds"][0]  # the end of epoch 1
        n_steps = steps * (epochs - 1)
        per_step = (res[0].seconds - first) / n_steps
        flop = 3 * model_cost(name, shape)[0] * 128 * k  # forward + backward, K models
        rows.append(dict(model=name, in_shape=list(shape), k=k, optimizer=opt, batch=128,
                         steps=n_steps, seconds=round(res[0].seconds, 3),
                         first_epoch_seconds=round(first, 3), wall=round(wall, 2),
                         ms_per_step=round(1e3 * per_step, 4),
                         tflops=round(flop / per_step / 1e12, 2),
                         device=torch.cuda.get_device_name() if a.device.startswith("cuda")
                         else "cpu", torch=torch.__version__))
        print(json.dumps(rows[-1]), flush=True)
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
