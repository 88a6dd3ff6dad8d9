"""Run under torchrun by tests/test_imagenet_stream.py: the whole Table 2 path (ImageFolder
tree, streamed decoding in workers, random labels drawn once, Inception V3, DDP) on a tiny
tree; every rank writes what it saw."""

from __future__ import annotations

import json
import sys

import torch.distributed as dist

from genbench.data.imagenet import load_imagenet
from genbench.studies.imagenet import ImageNetSettings, table2_row

SETTINGS = ImageNetSettings(epochs=1, batch_size=8, image_size=75, workers=0, seed=3)


def main(root: str, out: str) -> None:
    result = table2_row(SETTINGS, random_labels=True, root=root)
    labels = load_imagenet("train", root, random_labels_seed=SETTINGS.seed).targets
    rank = dist.get_rank()
    with open(f"{out}.{rank}", "w") as fh:
        json.dump({"world": dist.get_world_size(), "result": result.to_json(),
                   "labels": labels.tolist()}, fh)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
