"""Run under torchrun by tests/test_distributed.py: fit() and fit_many() on every rank, as a
user's script would, and rank 0 writes the results for comparison with one process."""

from __future__ import annotations

import json
import sys

import torch.distributed as dist

from genbench import models
from genbench.experiment import DataSpec, prepare
from genbench.training import Augment, TrainConfig, fit, fit_many
from genbench.training.runtime import Runtime

SPEC = DataSpec("mnist", n_train=400, n_test=200)
CONFIG = TrainConfig(lr=0.05, momentum=0.9, batch_size=64, max_epochs=3,
                     augment=Augment(crop_padding=2))


def build(seed: int):
    return models.build("eo_mlp", (1, 28, 28), 10, seed=seed)


def main(out: str) -> None:
    runtime = Runtime.from_env("full")  # the device mapping the plugin's fixture uses
    train, test = prepare(SPEC, device=runtime.device)
    single = fit(build(0), train, CONFIG, test, progress=False)
    many = fit_many([build(s) for s in range(3)], train, CONFIG, test, seeds=[0, 1, 2])
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, [str(runtime.device), runtime.rank, runtime.local_rank])
    if dist.get_rank() == 0:
        with open(out, "w") as fh:
            json.dump({"world": dist.get_world_size(), "fit": single.to_json(),
                       "runtimes": gathered,
                       "fit_many": [r.to_json() for r in many]}, fh)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
